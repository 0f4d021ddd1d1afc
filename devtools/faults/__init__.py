"""Fault injection: does ingest keep every event through crashes and outages?

``python -m devtools.faults`` runs each scenario against its own PostgreSQL,
Redis, gunicorn, Celery worker and beat, under a paced collect load shaped like
the tracker's, breaks something on purpose (kill -9 the worker, restart or kill
Redis, stop PostgreSQL, replay old events), then reconciles what the client was
told with what the database holds, event id by event id. See README "Faults and
durability".
"""
