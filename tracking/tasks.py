"""Celery tasks of tracking: thin wrappers that call processing services."""

from celery import shared_task

from tracking.processing import outbox_drain, outbox_sweep, retention_purge


@shared_task(name="tracking.process_outbox", acks_late=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def process_outbox() -> int:
    """Drain pending raw batches into Event; returns how many events were stored."""
    return outbox_drain().stored


@shared_task(name="tracking.sweep_outbox", acks_late=True)
def sweep_outbox() -> int:
    """Re-enqueue work for batches left unprocessed; returns how many were waiting."""
    return outbox_sweep()


@shared_task(name="tracking.purge_retention", acks_late=True)
def purge_retention() -> int:
    """Delete events past each site's retention; returns how many rows went."""
    return retention_purge()
