"""Key management: KEK providers, data keys (DEKs), rotation, blind-index keys.

This package knows nothing of citizens: a DEK belongs to an opaque owner id.
"""
