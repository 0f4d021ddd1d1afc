"""Privacy: data subject requests (erasure, export), retention, key rotation, the audit log."""
