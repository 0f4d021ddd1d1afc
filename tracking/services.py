"""Writes of the tracking app: sites, consent receipts, and accepting event batches."""

import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from kombu.exceptions import OperationalError

from recsite.cache import CACHE_UNAVAILABLE
from tracking.conf import tracking_settings
from tracking.db import is_postgresql, pg_fetchall
from tracking.errors import EnvelopeInvalid, NoConsent, PayloadTooLarge
from tracking.models import ConsentReceipt, ConsentRecord, RawBatch, Site
from tracking.validation import (
    MAX_ID,
    Invalid,
    Rejection,
    TimeWindow,
    clean_event,
    clean_id,
    clean_text,
    clean_user_id,
    clock_offset,
    parse_timestamp,
)
from tracking.wire import WireBatch, WireEvent
from tracking.wire import event_clean as wire_event_clean

logger = logging.getLogger(__name__)

# --- sites ------------------------------------------------------------------


@dataclass(frozen=True)
class SiteCreated:
    site: Site
    secret_key: str  # shown once: only its hash is stored


def secret_key_hash(secret_key: str) -> str:
    # Secret keys are 256 random bits: a plain SHA-256 cannot be brute-forced,
    # and it keeps the per-request lookup to one indexed query.
    return hashlib.sha256(secret_key.encode()).hexdigest()


def site_create(*, name: str, origins: list[str], retention_days: int = 395,
                require_consent: bool = True) -> SiteCreated:
    """Create a site with fresh keys; the secret key is returned once and never stored."""
    secret_key = "sk_live_" + secrets.token_urlsafe(32)
    site = Site.objects.create(
        name=name,
        public_key="pk_live_" + secrets.token_hex(12),
        secret_key_hash=secret_key_hash(secret_key),
        secret_key_hint=secret_key[:12],
        subject_salt=secrets.token_hex(32),
        allowed_origins=[origin.rstrip("/") for origin in origins],
        retention_days=retention_days,
        require_consent=require_consent,
    )
    return SiteCreated(site=site, secret_key=secret_key)


def site_rotate_secret(*, site: Site) -> str:
    """Give the site a new secret key (returned once); the old one stops working."""
    secret_key = "sk_live_" + secrets.token_urlsafe(32)
    site.secret_key_hash = secret_key_hash(secret_key)
    site.secret_key_hint = secret_key[:12]
    site.save(update_fields=["secret_key_hash", "secret_key_hint"])
    return secret_key


def subject_hash(*, site: Site, kind: str, raw_id: str) -> str:
    """The pseudonymous subject id: a keyed hash of an anon id ('a') or user id ('u')."""
    return hmac.digest(site.subject_salt.encode(), f"{kind}:{raw_id}".encode(), "sha256").hex()[:32]


# --- consent ----------------------------------------------------------------

CONSENT_PURPOSES = ("analytics", "personalization")


@transaction.atomic
def consent_record(*, site: Site, payload: dict[str, Any]) -> ConsentReceipt:
    """Append a consent receipt and make it the subject's current state."""
    known = {"site", "anon_id", "user_id", "purposes", "banner_version", "source", "ts"}
    unknown = set(payload) - known
    if unknown:
        raise EnvelopeInvalid(sorted(unknown)[0][:64], "is not a consent field")
    try:
        anon_id = payload.get("anon_id")
        anon_id = None if anon_id is None else clean_id(anon_id, "anon_id")
        user_id = clean_user_id(payload.get("user_id"), "user_id")
        if anon_id is None and user_id is None:
            raise Invalid("anon_id", "is required unless a user_id is given")
        purposes = payload.get("purposes")
        if not isinstance(purposes, dict):
            raise Invalid("purposes", 'must be an object such as {"analytics": true}')
        for key, value in purposes.items():
            if key == "necessary":
                continue
            if key not in CONSENT_PURPOSES:
                raise Invalid(f"purposes.{key[:64]}", "is not a purpose (analytics, "
                              "personalization, necessary)")
            if not isinstance(value, bool):
                raise Invalid(f"purposes.{key}", "must be true or false")
        source = payload.get("source", "banner")
        if source not in ConsentReceipt.Source.values:
            raise Invalid("source", "must be banner, gpc or api")
        chosen = {purpose: purposes.get(purpose, False) for purpose in CONSENT_PURPOSES}
        if source == ConsentReceipt.Source.GPC and any(chosen.values()):
            raise Invalid("purposes", "a Global Privacy Control signal grants no purpose")
        banner_version = clean_text(payload.get("banner_version", ""), "banner_version",
                                    max_len=64)
        client_ts = None if payload.get("ts") is None else parse_timestamp(payload["ts"], "ts")
    except Invalid as error:
        raise EnvelopeInvalid(error.field, error.detail) from None

    subject = subject_hash(site=site, kind="a" if anon_id else "u", raw_id=anon_id or user_id)
    user_subject = None if user_id is None else subject_hash(site=site, kind="u", raw_id=user_id)
    receipt = ConsentReceipt.objects.create(
        site=site, subject=subject, user_subject=user_subject, banner_version=banner_version,
        source=source, client_ts=client_ts, **chosen,
    )
    for who in {subject, user_subject} - {None}:
        ConsentRecord.objects.update_or_create(
            site=site, subject=who,
            defaults={"receipt": receipt, "updated_at": receipt.recorded_at, **chosen},
        )
    return receipt


# Each subject's current analytics consent, cached: 1 granted, 0 not (no record
# included). Saving or deleting a ConsentRecord writes its state here once its
# transaction commits (tracking.receivers); a reader fills a missing entry only
# if none appeared meanwhile (add), so a fill never overwrites a fresher choice.
CONSENT_CACHE_SECONDS = 24 * 3600


def consent_cache_key(site_id: int, subject: str) -> str:
    return f"tracking:consent:{site_id}:{subject}"


def consent_analytics_granted(*, site: Site, subjects: set[str],
                              prefetched: dict[str, Any] | None = None) -> set[str]:
    """Which of these subjects currently consent to analytics (one cache round trip, none
    when ``prefetched`` holds what the cache had for them: cache key -> value)."""
    if not subjects:
        return set()
    keys = {subject: consent_cache_key(site.pk, subject) for subject in subjects}
    if prefetched is not None and all(key in prefetched for key in keys.values()):
        cached = {key: value for key, value in prefetched.items() if value is not None}
    else:
        try:
            cached = cache.get_many(keys.values())
        except CACHE_UNAVAILABLE:  # Redis is down: the database has the answer
            return _consent_granted_read(site=site, subjects=subjects)
    granted = {subject for subject, key in keys.items() if cached.get(key) == 1}
    missing = [subject for subject, key in keys.items() if key not in cached]
    if missing:
        found = _consent_granted_read(site=site, subjects=missing)
        with contextlib.suppress(*CACHE_UNAVAILABLE):
            for subject in missing:
                cache.add(keys[subject], int(subject in found), timeout=CONSENT_CACHE_SECONDS)
        granted |= found
    return granted


def _consent_granted_read(*, site: Site, subjects: Iterable[str]) -> set[str]:
    return set(ConsentRecord.objects.filter(site=site, subject__in=subjects, analytics=True)
               .values_list("subject", flat=True))


# --- event batches ----------------------------------------------------------


@dataclass
class IngestResult:
    accepted: int
    rejected: list[Rejection] = field(default_factory=list)
    batch_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": [r.as_dict() for r in self.rejected]}


class SubjectHasher:
    """The pseudonymous subject ids of one batch: each raw id hashed once (a browser's
    batch is one visitor's)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.hashed: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, raw_id: str) -> str:
        key = (kind, raw_id)
        subject = self.hashed.get(key)
        if subject is None:
            subject = self.hashed[key] = subject_hash(site=self.site, kind=kind, raw_id=raw_id)
        return subject


def consent_keys_of_batch(*, site: Site, events: Any, hasher: SubjectHasher) -> list[str]:
    """The consent cache keys a batch will ask for, read off its raw events before
    validation (so the read can share a round trip with the throttles). A guess that
    validation later corrects costs nothing: a subject it missed is read as usual."""
    if not isinstance(events, list):
        return []
    if events and type(events[0]) is WireEvent:  # a WireBatch's: all are
        raw_ids = {event.anon_id for event in events}
        return [consent_cache_key(site.pk, hasher("a", raw_id)) for raw_id in raw_ids
                if type(raw_id) is str and raw_id and len(raw_id) <= MAX_ID]
    keys = set()
    for event in events[:tracking_settings.MAX_EVENTS]:
        if isinstance(event, dict):
            raw_id = event.get("anon_id")
            if isinstance(raw_id, str) and raw_id and len(raw_id) <= MAX_ID:
                keys.add(consent_cache_key(site.pk, hasher("a", raw_id)))
    return list(keys)


def event_batch_ingest(*, site: Site, payload: dict[str, Any] | WireBatch, received_at: datetime,
                       source: str, user_agent: str = "", hasher: SubjectHasher | None = None,
                       consent_cached: dict[str, Any] | None = None) -> IngestResult:
    """Validate a batch, check consent, store the accepted events in ONE insert, signal.

    Raises EnvelopeInvalid (400), PayloadTooLarge (413) or NoConsent (403)
    when the batch as a whole cannot be taken; otherwise each bad event is
    listed by index and reason and the good ones are stored. ``hasher`` and
    ``consent_cached`` (consent cache key -> value or None) carry work done
    before, by ``consent_keys_of_batch`` and the read that shared the throttles'
    round trip.
    """
    if isinstance(payload, WireBatch):  # its type holds the envelope's rules
        events, sent_at_raw = payload.events, payload.sent_at
    else:
        events, sent_at_raw = envelope_events(payload), payload.get("sent_at")
    sent_at = None
    if sent_at_raw is not None:
        try:
            sent_at = parse_timestamp(sent_at_raw, "sent_at")
        except Invalid as error:
            raise EnvelopeInvalid(error.field, error.detail) from None
    window = TimeWindow(
        received_at=received_at, sent_at=sent_at,
        max_future=tracking_settings.MAX_FUTURE, max_age=event_max_age(site=site),
        max_skew=tracking_settings.MAX_CLOCK_SKEW,
    )
    cleaned, rejected = events_clean(site=site, events=events, window=window, hasher=hasher)

    if site.require_consent and cleaned:
        granted = consent_analytics_granted(site=site, subjects={e["subject"] for _, e in cleaned},
                                            prefetched=consent_cached)
        kept = []
        for index, event in cleaned:
            if event["subject"] in granted:
                kept.append((index, event))
            else:
                rejected.append(Rejection(index, "no_consent", "anon_id",
                                          "this visitor has not consented to analytics"))
        cleaned = kept
        if not cleaned and all(r.reason == "no_consent" for r in rejected):
            raise NoConsent("no event of this batch has consent for analytics")

    kept, too_large = events_serialize(cleaned=cleaned)
    rejected = sorted(rejected + too_large, key=lambda r: r.index)
    result = IngestResult(accepted=kept.count, rejected=rejected)
    if not kept.count and not rejected:
        return result
    result.batch_id = raw_batch_store(site=site, source=source, received_at=received_at,
                                      sent_at=sent_at, user_agent=user_agent, events=kept,
                                      rejected=rejected)
    outbox_signal()
    return result


def envelope_events(payload: dict[str, Any]) -> list[Any]:
    """The events of a batch's envelope, which must have no other fields than its own."""
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        raise EnvelopeInvalid("events", "must be a non-empty array of events")
    if len(events) > tracking_settings.MAX_EVENTS:
        raise PayloadTooLarge(f"{len(events)} events in one batch; the limit is "
                              f"{tracking_settings.MAX_EVENTS}")
    unknown = set(payload) - {"site", "sent_at", "events"}
    if unknown:
        raise EnvelopeInvalid(sorted(unknown)[0][:64], "is not an envelope field (site, "
                              "sent_at, events)")
    return events


def event_max_age(*, site: Site) -> timedelta:
    """How old an arriving event may be: MAX_AGE, and never past the site's retention.

    An event older than the retention would be purged at once, and its original
    (if this is a replay) already has been: refusing it keeps dedupe total.
    """
    return min(tracking_settings.MAX_AGE, timedelta(days=site.retention_days))


@dataclass(frozen=True, slots=True)
class SerializedEvents:
    """Validated events as RawBatch.events stores them: one JSON array, and its length."""

    json: str
    count: int


def events_serialize(*, cleaned: list[tuple[int, dict[str, Any]]]
                     ) -> tuple[SerializedEvents, list[Rejection]]:
    """The clean events as one JSON array, less any event over MAX_EVENT_BYTES (a
    too_large rejection)."""
    max_bytes = tracking_settings.MAX_EVENT_BYTES
    whole = orjson.dumps([event for _, event in cleaned])
    if len(whole) <= max_bytes:  # no event is larger than all of them together
        return SerializedEvents(whole.decode(), len(cleaned)), []
    blobs: list[bytes] = []
    too_large: list[Rejection] = []
    for index, event in cleaned:
        blob = orjson.dumps(event)
        if len(blob) > max_bytes:
            too_large.append(Rejection(index, "too_large", "event",
                                       f"{len(blob)} bytes once validated; the limit is "
                                       f"{max_bytes}"))
        else:
            blobs.append(blob)
    return SerializedEvents((b"[" + b",".join(blobs) + b"]").decode(), len(blobs)), too_large


def rejection_counts(rejected: list[Rejection]) -> dict[str, int]:
    """RawBatch.rejected: how many events were refused, by reason."""
    return dict(Counter(r.reason for r in rejected))


def raw_batch_build(*, site: Site, source: str, received_at: datetime,
                    sent_at: datetime | None, user_agent: str, events: SerializedEvents,
                    rejected: list[Rejection]) -> RawBatch:
    """An unsaved RawBatch holding these events and the count of rejections by reason."""
    return RawBatch(
        site=site, source=source, received_at=received_at, sent_at=sent_at,
        user_agent=user_agent[:512], events=events.json, n_events=events.count,
        rejected=rejection_counts(rejected),
    )


_RAW_BATCH_FIELDS = ("site_id", "source", "received_at", "sent_at", "user_agent", "events",
                     "n_events", "rejected")


def raw_batch_store(*, site: Site, source: str, received_at: datetime,
                    sent_at: datetime | None, user_agent: str, events: SerializedEvents,
                    rejected: list[Rejection]) -> int:
    """Store one RawBatch (the request's one durable insert); returns its id.

    On PostgreSQL the row goes in as one statement with server-side binding,
    without building a model instance (this is the hottest insert of all).
    """
    if not is_postgresql():
        batch = raw_batch_build(site=site, source=source, received_at=received_at,
                                sent_at=sent_at, user_agent=user_agent, events=events,
                                rejected=rejected)
        batch.save(force_insert=True)
        return batch.pk
    table = connection.ops.quote_name(RawBatch._meta.db_table)
    counts = orjson.dumps(rejection_counts(rejected)).decode()
    (row,) = pg_fetchall(
        f"INSERT INTO {table} ({', '.join(_RAW_BATCH_FIELDS)}) VALUES "
        f"({', '.join(['%b'] * (len(_RAW_BATCH_FIELDS) - 1))}, %b::jsonb) RETURNING id",
        [site.pk, source, received_at, sent_at, user_agent[:512], events.json, events.count,
         counts],
        prepare=True,
    )
    return row[0]


def events_clean(*, site: Site, events: list[Any], window: TimeWindow,
                 hasher: SubjectHasher | None = None
                 ) -> tuple[list[tuple[int, dict[str, Any]]], list[Rejection]]:
    """Validate each event (a dict, or a WireEvent: see tracking.wire) and replace its raw
    ids with pseudonymous subject ids."""
    offset = clock_offset(window)
    cleaned: list[tuple[int, dict[str, Any]]] = []
    rejected: list[Rejection] = []
    subject = hasher or SubjectHasher(site)

    for index, raw in enumerate(events):
        try:
            event = wire_event_clean(raw, window, offset) if type(raw) is WireEvent \
                else clean_event(raw, window, offset)
        except Invalid as error:
            rejected.append(Rejection(index, error.reason, error.field, error.detail))
            continue
        anon_id, user_id = event.pop("anon_id"), event.pop("user_id")
        user_subject = None if user_id is None else subject("u", user_id)
        event["subject"] = subject("a", anon_id) if anon_id is not None else user_subject
        event["user_subject"] = user_subject
        cleaned.append((index, event))
    return cleaned, rejected


# --- the outbox -------------------------------------------------------------

PENDING_FLAG = "tracking:outbox-pending"
# Under load every request would ask Redis whether a drain is queued. A process
# that saw the flag set moments ago skips asking; the drain task makes that safe by
# looking for batches one last time FLAG_MEMO_SECONDS after it cleared the flag
# (outbox_drain's ``linger``), so a batch whose request skipped is still taken.
# Tasks run in the request (eager, the embedded default): no memo, nothing lingers.
FLAG_MEMO_SECONDS = 0.2
_flag_seen_at = -1.0


def outbox_signal() -> None:
    """Make sure a drain is on its way, enqueuing at most one while one is pending.

    The drain clears the flag before it looks for work, so a batch stored after
    that look sets the flag again and enqueues the next drain; a lost message
    only delays work until the flag expires and the sweeper finds the batch.
    """
    global _flag_seen_at
    now = time.monotonic()
    if now - _flag_seen_at < FLAG_MEMO_SECONDS \
            and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return
    try:
        added = cache.add(PENDING_FLAG, time.time(), timeout=60)
    except CACHE_UNAVAILABLE:  # Redis is down: the batch waits in the outbox for the sweeper
        logger.warning("outbox: the cache is unavailable; the sweeper will enqueue the drain")
        _flag_seen_at = now  # and this process asks again only after the memo's time
        return
    if added:
        transaction.on_commit(_drain_enqueue)
    else:
        _flag_seen_at = now


def _drain_enqueue() -> None:
    """Send the drain task; if the broker is down, forget the flag so a later batch retries."""
    from tracking.tasks import process_outbox  # tasks call services, not the other way

    try:
        process_outbox.apply_async()
    except (*CACHE_UNAVAILABLE, OperationalError):
        logger.warning("outbox: the broker is unavailable; the sweeper will enqueue the drain")
        with contextlib.suppress(*CACHE_UNAVAILABLE):
            cache.delete(PENDING_FLAG)


def outbox_pending_clear() -> None:
    global _flag_seen_at
    _flag_seen_at = -1.0
    cache.delete(PENDING_FLAG)

