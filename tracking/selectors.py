"""Reads of the tracking app."""

from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from tracking.models import DailyCount, Event, Site


@dataclass(frozen=True)
class SiteOverview:
    site: Site
    events: int
    pending_batches: int
    dropped: int


def site_overview_list() -> list[SiteOverview]:
    """Each site with its stored events, waiting batches and dropped events."""
    drop_outcomes = [o for o in DailyCount.Outcome.values if o not in ("accepted", "stored")]
    sites = Site.objects.annotate(
        pending=Count("raw_batches", filter=Q(raw_batches__processed_at__isnull=True)),
    ).order_by("name")
    dropped = dict(
        DailyCount.objects.filter(outcome__in=drop_outcomes)
        .values_list("site").annotate(n=Sum("count"))
    )
    stored = dict(
        DailyCount.objects.filter(outcome="stored").values_list("site").annotate(n=Sum("count"))
    )
    return [
        SiteOverview(site=site, events=stored.get(site.pk, 0), pending_batches=site.pending,
                     dropped=dropped.get(site.pk, 0))
        for site in sites
    ]


def event_count(*, site: Site) -> int:
    """Distinct events stored for a site (an event with several items counts once)."""
    return Event.objects.filter(site=site, item_index=0).count()


def outcome_totals(*, site: Site) -> dict[str, int]:
    """All-time totals per outcome (accepted, stored, duplicate, each drop reason)."""
    return dict(
        DailyCount.objects.filter(site=site).values_list("outcome").annotate(n=Sum("count"))
    )

