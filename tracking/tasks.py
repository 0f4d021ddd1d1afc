"""Celery tasks of tracking: thin wrappers that call processing and privacy services."""

from celery import shared_task

from tracking.models import Site
from tracking.privacy.requests import exports_expire, subject_request_run
from tracking.privacy.retention import previous_keys_forget, site_retention_purge
from tracking.processing import outbox_drain, outbox_sweep
from tracking.services import FLAG_MEMO_SECONDS


@shared_task(name="tracking.process_outbox", acks_late=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def process_outbox() -> int:
    """Drain pending raw batches into Event; returns how many events were stored."""
    return outbox_drain(linger=FLAG_MEMO_SECONDS).stored


@shared_task(name="tracking.sweep_outbox", acks_late=True)
def sweep_outbox() -> int:
    """Re-enqueue work for batches left unprocessed; returns how many were waiting."""
    return outbox_sweep()


@shared_task(name="tracking.purge_retention", acks_late=True)
def purge_retention() -> int:
    """Queue one retention purge per site; expire exports and old keys; returns sites queued."""
    exports_expire()
    previous_keys_forget()
    site_ids = list(Site.objects.values_list("pk", flat=True))
    for site_id in site_ids:
        purge_site_retention.delay(site_id)
    return len(site_ids)


@shared_task(name="privacy.purge_site_retention", acks_late=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def purge_site_retention(site_id: int) -> int:
    """Delete a site's rows past its retention, a bounded number of chunks, then hand the
    rest to a new task; returns rows deleted by this one."""
    site = Site.objects.filter(pk=site_id).first()
    if site is None:
        return 0
    result = site_retention_purge(site=site)
    if not result.done:
        purge_site_retention.delay(site_id)
    return result.events + result.raw_batches


@shared_task(name="privacy.run_subject_request", acks_late=True)
def run_subject_request(request_id: str) -> str:
    """Carry out a data subject request (erase or export); returns its status. A failure is
    recorded on the request, which an admin can retry."""
    return subject_request_run(request_id=request_id).status
