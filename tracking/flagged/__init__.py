"""Events the cleaning flagged as a bot's, kept apart with the reason.

They never reach the Event table, so nothing that reads events (training, profiles,
serving, attribution, dashboards) sees them; the admin lists them for review, and the
daily counts still count them by reason. Raw ids are not in them (the outbox holds
subject hashes only).
"""
