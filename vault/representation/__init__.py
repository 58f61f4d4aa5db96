"""Acting for someone else (issue 17): parents of minors, guardians, mandates (docs/representation.md)."""
