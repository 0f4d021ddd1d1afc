"""Reads of the profiles app: a subject's profile and segments (cached), charts, events."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from profiles.conf import profile_settings
from profiles.models import IdentityLink, Membership, Profile, Segment, SegmentSize, SiteState
from profiles.segmenting import cache_key
from profiles.state import affinity_normalized
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
    subjects = sorted(set(profile.alias_list) | {profile.subject})
    rows = Event.objects.filter(site_id=profile.site_id, subject__in=subjects, item_index=0) \
        .order_by("-ts").values_list("ts", "name", "item_id", "value", "session")[:limit]
    return [SeenEvent(*row) for row in rows]


def segment_size_series(*, segment: Segment, days: int = 90) -> list[tuple[datetime, int]]:
    """(time, size) points of a segment over the last days, oldest first."""
    since = timezone.now() - timedelta(days=days)
    return list(SegmentSize.objects.filter(segment=segment, at__gte=since)
                .order_by("at").values_list("at", "size"))


@dataclass(frozen=True)
class ProfileView:
    """A subject's profile as the site owner's backend reads it."""

    profile: Profile
    recency_days: float
    affinity: dict[str, float]  # normalized 0..1, highest first
    device_shares: dict[str, float]
    segments: list[dict[str, Any]]


def profile_view(*, site: Site, raw_id: str, kind: str, top_categories: int = 20
                 ) -> ProfileView | None:
    """The profile of a raw user id ('u') or anon id ('a') of a site, or None."""
    profile = profile_get(site=site, subject=profile_owner(site=site, raw_id=raw_id, kind=kind))
    if profile is None:
        return None
    state = SiteState.objects.filter(site=site).first() or SiteState(site=site)
    total = sum(profile.devices.values())
    return ProfileView(
        profile=profile,
        recency_days=max((state.now() - profile.last_seen).total_seconds() / 86400, 0.0),
        affinity=dict(list(affinity_normalized(profile.affinity).items())[:top_categories]),
        device_shares={device: n / total for device, n in sorted(profile.devices.items())},
        segments=subject_segments(site=site, subject=profile.subject),
    )


@dataclass(frozen=True)
class SiteSummary:
    profiles: int
    rfm_segments: dict[str, int]
    stages: dict[str, int]
    segments: list[Segment]  # active ones, largest first


def site_summary(*, site: Site) -> SiteSummary:
    """How a site's profiles spread over RFM segments, stages and segments."""
    profiles = Profile.objects.filter(site=site)
    return SiteSummary(
        profiles=profiles.count(),
        rfm_segments=dict(profiles.exclude(rfm_segment="").values_list("rfm_segment")
                          .annotate(n=Count("pk")).order_by("-n")),
        stages=dict(profiles.values_list("stage").annotate(n=Count("pk")).order_by("-n")),
        segments=list(Segment.objects.filter(site=site, is_active=True).order_by("kind",
                                                                                  "-size")),
    )
