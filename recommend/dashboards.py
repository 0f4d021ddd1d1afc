"""The admin dashboards: CTR over time per placement and variant, event volume and drop
reasons, segment sizes, model versions with their offline metrics, attribution and
experiment results, as inline SVG charts with their tables."""

from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDay
from django.utils import timezone

from profiles.models import Segment
from recommend import charts
from recommend.attribution import attribution_report, experiment_results
from recommend.models import Attribution, Experiment, ModelVersion
from tracking.models import DailyCount, Site

DROPS = [o for o in DailyCount.Outcome.values if o not in ("accepted", "stored")]


def dashboard_context(*, site: Site, days: int = 30) -> dict[str, Any]:
    """Everything the site's dashboard shows, charts rendered."""
    since = timezone.now() - timedelta(days=days)
    return {
        "site": site, "days": days,
        "ctr": ctr_chart(site=site, since=since),
        "volume": volume_chart(site=site, since=since.date()),
        "segments": segments_chart(site=site),
        "models": models_table(site=site),
        "attribution": attribution_report(site_id=site.pk, since=since),
        "experiments": [(e, experiment_results(experiment=e)) for e in
                        Experiment.objects.filter(site=site, is_active=True)
                        .select_related("placement").prefetch_related("variants")],
    }


def ctr_chart(*, site: Site, since: Any) -> dict[str, Any]:
    rows = Attribution.objects.filter(site=site, ts__gte=since, kind__in=["impression", "click"]) \
        .annotate(day=TruncDay("ts")).order_by().values("placement", "variant", "day") \
        .annotate(impressions=Count("pk", filter=Q(kind="impression")),
                  clicks=Count("pk", filter=Q(kind="click")))
    days = sorted({_day(row["day"]) for row in rows})
    series: dict[str, dict[date, tuple[int, int]]] = {}
    for row in rows:
        name = f"{row['placement']}/{row['variant'] or '-'}"
        series.setdefault(name, {})[_day(row["day"])] = (row["impressions"], row["clicks"])
    lines = {name: [points[d][1] / points[d][0] if d in points and points[d][0] else None
                    for d in days] for name, points in sorted(series.items())}
    labels = [d.strftime("%m-%d") for d in days]
    return {"svg": charts.line_chart("Click-through rate per day, by placement/variant",
                                     labels, lines) if days else None,
            "rows": [(name, label, points.get(d, (0, 0))) for name, points in
                     sorted(series.items()) for d, label in zip(days, labels, strict=True)]}


def volume_chart(*, site: Site, since: date) -> dict[str, Any]:
    counts = DailyCount.objects.filter(site=site, day__gte=since).values_list(
        "day", "outcome", "count")
    days = sorted({day for day, _, _ in counts})
    table: dict[str, dict[date, int]] = {}
    for day, outcome, count in counts:
        table.setdefault(outcome, {})[day] = count
    stacks = {outcome: [table.get(outcome, {}).get(d, 0) for d in days]
              for outcome in ["stored", *DROPS] if outcome in table}
    labels = [d.strftime("%m-%d") for d in days]
    return {"svg": charts.stacked_bars("Events per day: stored, and each reason for a drop",
                                       labels, stacks) if days else None,
            "totals": sorted(((outcome, sum(values.values())) for outcome, values
                              in table.items()), key=lambda pair: -pair[1])}


def segments_chart(*, site: Site) -> dict[str, Any]:
    rows = [(f"{s.name} ({s.kind})", float(s.size)) for s in
            Segment.objects.filter(site=site, is_active=True).order_by("-size", "name")[:25]]
    return {"svg": charts.hbars("Segment sizes (subjects)", rows) if rows else None,
            "rows": rows}


def models_table(*, site: Site) -> dict[str, Any]:
    versions = list(ModelVersion.objects.filter(site=site).order_by("-created_at", "-id")[:10])
    rows = [(f"v{v.pk}", float((v.metrics or {}).get("ndcg@20", 0.0))) for v in versions
            if v.status == ModelVersion.Status.READY]
    baseline = [(f"v{v.pk} popularity", float((v.metrics or {}).get("popularity_ndcg@20", 0.0)))
                for v in versions if v.status == ModelVersion.Status.READY]
    paired = [row for pair in zip(rows, baseline, strict=True) for row in pair]
    metrics = [(v, *((v.metrics or {}).get(key) for key in
                     ("recall@20", "ndcg@20", "popularity_ndcg@20"))) for v in versions]
    return {"versions": metrics,
            "svg": charts.hbars("NDCG@20 on held-out events: each version and popularity",
                                paired, fmt="{:.4f}") if paired else None}


def _day(value: Any) -> date:
    return value.date() if hasattr(value, "date") else value
