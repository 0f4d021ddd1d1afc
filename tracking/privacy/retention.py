"""Retention: events, flagged bot events and raw batches older than each site's
retention_days are deleted.

In bounded chunks (ids first, then a DELETE by id), so a big backlog never holds a long
lock or a huge transaction; a task that reaches its chunk budget hands the rest on.
Consent receipts are kept (they prove what was allowed), as are daily counts (aggregates).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from tracking.conf import tracking_settings
from tracking.flagged.models import FlaggedEvent
from tracking.models import Event, PreviousSubjectKey, RawBatch, Site


@dataclass(frozen=True)
class PurgeResult:
    events: int
    raw_batches: int
    done: bool  # False: the chunk budget ran out with rows still past the window
    flagged: int = 0  # bots' events kept apart with their reason (tracking.flagged)


def retention_cutoff(*, site: Site, now: datetime | None = None) -> datetime:
    """Rows strictly older than this are past the site's retention."""
    return (now or timezone.now()) - timedelta(days=site.retention_days)


def site_retention_purge(*, site: Site, now: datetime | None = None,
                         max_chunks: int | None = None) -> PurgeResult:
    """Delete the site's events and flagged events (by event time) and raw batches (by
    receive time) past its retention, at most ``max_chunks`` chunks in all."""
    cutoff = retention_cutoff(site=site, now=now)
    budget = max_chunks or tracking_settings.RETENTION_MAX_CHUNKS
    events, budget = _chunks_delete(Event.objects.filter(site=site, ts__lt=cutoff), budget)
    batches, budget = _chunks_delete(
        RawBatch.objects.filter(site=site, received_at__lt=cutoff), budget)
    flagged, budget = _chunks_delete(
        FlaggedEvent.objects.filter(site=site, ts__lt=cutoff), budget)
    return PurgeResult(events=events, raw_batches=batches, done=budget > 0, flagged=flagged)


def _chunks_delete(queryset, budget: int) -> tuple[int, int]:
    """Delete the queryset's rows a chunk at a time; returns (rows deleted, budget left).

    The budget left is 0 only when it ran out with rows remaining."""
    if budget <= 0:  # spent on an earlier table: this one waits for the next task
        return 0, 0
    model: type[Model] = queryset.model
    size = tracking_settings.RETENTION_CHUNK_ROWS
    deleted = 0
    while budget > 0:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:size])
        if not ids:
            return deleted, budget
        with transaction.atomic():
            count, _ = model.objects.filter(pk__in=ids).delete()
        deleted += count
        budget -= 1
        if len(ids) < size:
            return deleted, budget
    return deleted, 0 if queryset.exists() else 1


def previous_keys_forget(*, now: datetime | None = None) -> int:
    """Delete retired subject keys whose rows have all aged out; returns how many."""
    count, _ = PreviousSubjectKey.objects.filter(forget_after__lt=now or timezone.now()).delete()
    return count
