"""The tamper-evident audit log: append in the caller's transaction, verify, review, report."""
