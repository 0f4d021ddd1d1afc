"""Event collection: sites, consent, the outbox and the cleaning pipeline."""
