"""Registered purposes of processing: categories, lawful basis, retention, which agencies."""
