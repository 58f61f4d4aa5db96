"""The domain and its storage: profiles, field encryption, consents, grants, audit, PII, insights."""
