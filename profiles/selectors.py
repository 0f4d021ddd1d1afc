"""Reads of the profiles app: a subject's profile and segments (cached), charts, events."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from profiles.conf import profile_settings
from profiles.models import IdentityLink, Membership, Profile, Segment, SegmentSize
from profiles.segmenting import cache_key
from tracking.models import Event, Site
from tracking.services import subject_hash


def profile_owner(*, site: Site, raw_id: str, kind: str) -> str:
    """The profile subject of a raw user id ('u') or anon id ('a'), following a login link."""
    subject = subject_hash(site=site, kind=kind, raw_id=raw_id)
    if kind == "a":
        linked = IdentityLink.objects.filter(site=site, anon_subject=subject) \
            .values_list("user_subject", flat=True).first()
        return linked or subject
    return subject


def profile_get(*, site: Site, subject: str) -> Profile | None:
    return Profile.objects.filter(site=site, subject=subject).first()


def subject_segments(*, site: Site, subject: str) -> list[dict[str, Any]]:
    """The segments a subject is in now: slug, name, kind and since (cached for serving)."""
    key = cache_key(site.pk, subject)
    cached = cache.get(key)
    if cached is not None:
        return cached
    rows = Membership.objects.filter(site=site, subject=subject, until__isnull=True,
                                     segment__is_active=True) \
        .select_related("segment").order_by("segment__kind", "segment__name")
    segments = [{"slug": m.segment.slug, "name": m.segment.name, "kind": m.segment.kind,
                 "since": m.since.isoformat()} for m in rows]
    cache.set(key, segments, profile_settings.SEGMENT_CACHE_SECONDS)
    return segments


def membership_history(*, site: Site, subject: str, limit: int = 50) -> list[Membership]:
    """A subject's memberships, current and past, newest first."""
    return list(Membership.objects.filter(site=site, subject=subject)
                .select_related("segment").order_by("-since")[:limit])


@dataclass(frozen=True)
class SeenEvent:
    ts: datetime
    name: str
    item_id: str
    value: float | None
    session: str


def profile_recent_events(*, profile: Profile, limit: int = 30) -> list[SeenEvent]:
    """The latest events of a profile (its own and those of the subjects merged into it)."""
    subjects = sorted(set(profile.aliases) | {profile.subject})
    rows = Event.objects.filter(site_id=profile.site_id, subject__in=subjects, item_index=0) \
        .order_by("-ts").values_list("ts", "name", "item_id", "value", "session")[:limit]
    return [SeenEvent(*row) for row in rows]


def segment_size_series(*, segment: Segment, days: int = 90) -> list[tuple[datetime, int]]:
    """(time, size) points of a segment over the last days, oldest first."""
    since = timezone.now() - timedelta(days=days)
    return list(SegmentSize.objects.filter(segment=segment, at__gte=since)
                .order_by("at").values_list("at", "size"))
