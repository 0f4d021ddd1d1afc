"""Erasure: every row and cache entry of a set of subject hashes goes, in one transaction.

tracking deletes its own rows (events, the subject's events inside raw batches, consent
state and receipts) and asks the other apps through the ``subjects_erased`` signal; the
rows deleted per table are returned as the proof. Consent receipts and the audit log are
append-only in PostgreSQL: this is the one place that lifts that, for its own transaction.
"""

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q

from tracking.models import (
    ConsentReceipt,
    ConsentRecord,
    DataSubjectRequest,
    Event,
    PersonalDataAccess,
    RawBatch,
    Site,
)
from tracking.privacy.subjects import subject_filter
from tracking.services import consent_cache_key
from tracking.signals import subjects_erased

logger = logging.getLogger(__name__)


@contextmanager
def erasure_transaction() -> Iterator[None]:
    """A transaction in which the append-only triggers let erasure delete (PostgreSQL)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL recsite.erasure = 'on'")
        yield


def subjects_erase(*, site: Site, subjects: set[str],
                   keep_request: DataSubjectRequest | None = None) -> dict[str, int]:
    """Delete everything held about these subject hashes; returns rows per table.

    ``keep_request`` is the erasure's own request, which stays as the proof (its subject
    hash is blanked by the caller when it records the counts).
    """
    counts: Counter[str] = Counter()
    with erasure_transaction():
        counts["tracking.Event"], _ = Event.objects.filter(site=site).filter(
            subject_filter(subjects, "subject", "user_subject")).delete()
        batches, removed = raw_batches_scrub(site=site, subjects=subjects)
        counts["tracking.RawBatch"] = batches
        counts["tracking.RawBatch.events"] = removed
        counts["tracking.ConsentRecord"], _ = ConsentRecord.objects.filter(
            site=site, subject__in=subjects).delete()
        counts.update(_receipts_erase(site, subjects))
        counts.update(_requests_forget(site, subjects, keep_request))
        counts["tracking.PersonalDataAccess (subject blanked)"] = PersonalDataAccess.objects \
            .filter(subject__in=subjects).update(subject="")
        for _, result in subjects_erased.send(sender=DataSubjectRequest, site=site,
                                                     subjects=frozenset(subjects)):
            counts.update(result or {})
        transaction.on_commit(lambda: cache_keys_erase(site=site, subjects=subjects))
    return dict(sorted(counts.items()))


def raw_batches_scrub(*, site: Site, subjects: set[str]) -> tuple[int, int]:
    """Take the subjects' events out of raw batches (a batch left empty is deleted);
    returns (batches changed or deleted, events removed).

    Batches hold events as JSON text: a LIKE finds the candidates, and each is parsed so
    that the other subjects' events in the same batch stay.
    """
    if not subjects:
        return 0, 0
    text_match = Q()
    for subject in subjects:
        text_match |= Q(events__contains=subject)
    changed = removed = 0
    for batch in RawBatch.objects.select_for_update().filter(site=site).filter(text_match):
        events = orjson.loads(batch.events)
        kept = [e for e in events
                if e.get("subject") not in subjects and e.get("user_subject") not in subjects]
        if len(kept) == len(events):
            continue  # the hash appeared elsewhere in the text (a rec_token, say)
        changed += 1
        removed += len(events) - len(kept)
        if kept:
            batch.events = orjson.dumps(kept).decode()
            batch.n_events = len(kept)
            batch.save(update_fields=["events", "n_events"])
        else:
            batch.delete()
    return changed, removed


def _receipts_erase(site: Site, subjects: set[str]) -> dict[str, int]:
    """Delete the subjects' receipts; one that is still another subject's current state
    (given with a user id, erased by the anon id) loses the erased hash instead."""
    receipts = ConsentReceipt.objects.filter(site=site).filter(
        subject_filter(subjects, "subject", "user_subject"))
    in_use = set(ConsentRecord.objects.filter(receipt__in=receipts)
                 .values_list("receipt_id", flat=True))
    shared = receipts.filter(pk__in=in_use)
    blanked = shared.filter(subject__in=subjects).update(subject="")
    blanked += shared.filter(user_subject__in=subjects).update(user_subject=None)
    deleted, _ = receipts.exclude(pk__in=in_use).delete()
    return {"tracking.ConsentReceipt": deleted,
            "tracking.ConsentReceipt (kept for another subject, hash blanked)": blanked}


def _requests_forget(site: Site, subjects: set[str],
                     keep: DataSubjectRequest | None) -> dict[str, int]:
    """Other requests about these subjects: export files deleted, subject hashes blanked."""
    from tracking.privacy.exporting import export_file_delete

    others = DataSubjectRequest.objects.filter(site=site, subject__in=subjects)
    if keep is not None:
        others = others.exclude(pk=keep.pk)
    files = 0
    for request in others.exclude(export_file=""):
        files += export_file_delete(request)
    blanked = others.update(subject="", older_subjects="", export_file="")
    return {"tracking.DataSubjectRequest (subject blanked)": blanked,
            "tracking.DataSubjectRequest export files": files}


def cache_keys_erase(*, site: Site, subjects: set[str]) -> int:
    """Delete the subjects' cache entries: the consent state, then on Redis every key that
    names one of the hashes (answers, segments, anything added later); returns how many."""
    cache.delete_many([consent_cache_key(site.pk, subject) for subject in subjects])
    client = getattr(cache, "_cache", None)
    if client is None or not hasattr(client, "get_client"):
        return len(subjects)  # local memory: the apps' receivers dropped their own keys
    redis = client.get_client(write=True)
    deleted = 0
    for subject in subjects:
        keys = list(redis.scan_iter(match=f"*{subject}*", count=1000))
        if keys:
            deleted += redis.delete(*keys)
    return deleted
