"""PII detection in free text (issue #6): an offline Presidio engine, national-identifier checksums, intake policy.

Only :mod:`vault.pii.engine` imports presidio_analyzer (an import-linter contract enforces it).
"""
