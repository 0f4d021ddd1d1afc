"""Attribution: clean events that carry a rec_token joined to the recommendation behind
them, and the report of impressions, clicks, conversions and revenue from those rows.

An impression is a ``view_item_list`` (one per list shown), a click a ``select_item``;
an ``add_to_cart`` or ``purchase`` counts as a conversion when its item was in the list
and it came within ATTRIBUTION_WINDOW_HOURS of the recommendation. The tracker puts the
clicked list's token on later events about that item (``items[].rec_token``).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDay

from recommend.conf import recommend_settings
from recommend.experiments import ExperimentResult, experiment_analyse
from recommend.models import Attribution, Dismissal, Experiment
from recommend.tokens import RecToken, token_read
from tracking.db import pk_in
from tracking.models import Event

KINDS = {"view_item_list": Attribution.Kind.IMPRESSION, "select_item": Attribution.Kind.CLICK,
         "add_to_cart": Attribution.Kind.ADD_TO_CART, "purchase": Attribution.Kind.PURCHASE}
CONVERSIONS = ("add_to_cart", "purchase")


def events_attribute(*, site_id: int, event_pks: Iterable[int]) -> int:
    """Record the attributable events among these; returns how many rows were new.

    Safe to call twice (one row per event row at most).
    """
    pks = list(event_pks)
    max_age = recommend_settings.REC_TOKEN_MAX_AGE_DAYS * 86400
    window = timedelta(hours=recommend_settings.ATTRIBUTION_WINDOW_HOURS)
    rows = Event.objects.filter(pk_in(pks), name__in=list(KINDS)).filter(
        ~Q(rec_token="") | Q(name__in=CONVERSIONS)).values_list(
        "pk", "name", "item_index", "item_id", "subject", "user_subject", "ts", "value",
        "rec_token", "context")
    made = []
    for pk, name, item_index, item_id, subject, user_subject, ts, value, text, context in rows:
        item_context = context.get("item") if isinstance(context, dict) else None
        if isinstance(item_context, dict) and item_context.get("rec_token"):
            text = item_context["rec_token"]
        token = token_read(text, max_age_seconds=max_age)
        if token is None or not _same_subject(token, subject, user_subject):
            continue
        issued = datetime.fromtimestamp(token.issued, tz=UTC)
        if name == "view_item_list" and item_index != 0:
            continue  # one impression per list shown
        if name in CONVERSIONS and (not token.names_item(item_id) or ts - issued > window):
            continue
        made.append(Attribution(
            site_id=site_id, event_pk=pk, kind=KINDS[name], ts=ts, placement=token.placement,
            variant=token.variant, experiment_id=token.experiment,
            model_version=token.model_version, subject=subject, item_id=item_id,
            value=value if name in CONVERSIONS else None, issued_at=issued))
    before = Attribution.objects.filter(site_id=site_id, event_pk__in=[a.event_pk for a in made]) \
        .count() if made else 0
    Attribution.objects.bulk_create(made, ignore_conflicts=True)
    return len(made) - before


def _same_subject(token: RecToken, subject: str, user_subject: str | None) -> bool:
    """A token counts for the subject it was made for (as visitor or as logged-in user)."""
    return subject.startswith(token.subject) or bool(
        user_subject and user_subject.startswith(token.subject))


def dismissals_record(*, site_id: int, event_pks: Iterable[int]) -> int:
    """Keep each ``not_interested`` item of these events for good; returns rows seen."""
    rows = Event.objects.filter(pk_in(list(event_pks)), name="not_interested") \
        .exclude(item_id="").values_list("subject", "user_subject", "item_id", "ts")
    made = []
    for subject, user_subject, item_id, ts in rows:
        for who in {subject, user_subject} - {None, ""}:
            made.append(Dismissal(site_id=site_id, subject=who, item_id=item_id, created_at=ts))
    Dismissal.objects.bulk_create(made, ignore_conflicts=True)
    return len(made)


# --- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class AttributionRow:
    """Figures of one group (placement, variant and model version, or any of them)."""

    key: tuple
    impressions: int
    clicks: int
    add_to_cart: int
    purchases: int
    revenue: float

    @property
    def conversions(self) -> int:
        return self.add_to_cart + self.purchases

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def conversion_rate(self) -> float:
        """Conversions (add_to_cart + purchase) per impression."""
        return self.conversions / self.impressions if self.impressions else 0.0


GROUPS = ("placement", "variant", "model_version", "experiment_id")


def attribution_report(*, site_id: int, by: Iterable[str] = ("placement", "variant",
                                                             "model_version"),
                       since: datetime | None = None, experiment_id: int | None = None
                       ) -> list[AttributionRow]:
    """Impressions, clicks, add_to_cart, purchases and revenue per group."""
    by = [group for group in by if group in GROUPS]
    rows = Attribution.objects.filter(site_id=site_id)
    if since is not None:
        rows = rows.filter(ts__gte=since)
    if experiment_id is not None:
        rows = rows.filter(experiment_id=experiment_id)
    figures = rows.order_by().values(*by).annotate(**_counts()).order_by(*by)
    return [AttributionRow(key=tuple(row[g] for g in by), impressions=row["impressions"],
                           clicks=row["clicks"], add_to_cart=row["add_to_cart"],
                           purchases=row["purchases"], revenue=float(row["revenue"] or 0.0))
            for row in figures]


def ctr_by_day(*, site_id: int, experiment_id: int | None = None, placement: str | None = None,
               since: datetime | None = None) -> dict[str, list[tuple[date, int, int]]]:
    """Per variant: (day, impressions, clicks), oldest first."""
    rows = Attribution.objects.filter(site_id=site_id, kind__in=["impression", "click"])
    if experiment_id is not None:
        rows = rows.filter(experiment_id=experiment_id)
    if placement is not None:
        rows = rows.filter(placement=placement)
    if since is not None:
        rows = rows.filter(ts__gte=since)
    series: dict[str, list[tuple[date, int, int]]] = {}
    daily = rows.annotate(day=TruncDay("ts")).order_by().values("variant", "day") \
        .annotate(impressions=Count("pk", filter=Q(kind="impression")),
                  clicks=Count("pk", filter=Q(kind="click"))).order_by("variant", "day")
    for row in daily:
        day = row["day"].date() if isinstance(row["day"], datetime) else row["day"]
        series.setdefault(row["variant"] or "-", []).append(
            (day, row["impressions"], row["clicks"]))
    return series


def _counts() -> dict:
    return {
        "impressions": Count("pk", filter=Q(kind="impression")),
        "clicks": Count("pk", filter=Q(kind="click")),
        "add_to_cart": Count("pk", filter=Q(kind="add_to_cart")),
        "purchases": Count("pk", filter=Q(kind="purchase")),
        "revenue": Sum("value", filter=Q(kind="purchase")),
    }


def experiment_results(*, experiment: Experiment) -> ExperimentResult:
    """Per variant: impressions, clicks, CTR, conversions, revenue, with intervals, tests
    against the control and warnings while the sample is small."""
    rows = {row.key[0]: row for row in attribution_report(
        site_id=experiment.site_id, by=("variant",), experiment_id=experiment.pk)}
    arms = []
    for variant in experiment.variants.all():
        row = rows.get(variant.name)
        arms.append({"name": variant.name, "is_control": variant.is_control,
                     "is_holdout": variant.is_holdout,
                     "impressions": row.impressions if row else 0,
                     "clicks": row.clicks if row else 0,
                     "conversions": row.conversions if row else 0,
                     "revenue": row.revenue if row else 0.0})
    return experiment_analyse(arms, min_impressions=experiment.min_impressions)
