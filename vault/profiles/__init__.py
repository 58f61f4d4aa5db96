"""Citizen profiles: encrypted field by field, one data key per citizen."""
