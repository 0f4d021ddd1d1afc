"""Reads of the recommend app: training data from events and the catalog, model versions,
and what serving reads: a subject's history, placements, experiments, ranked lists."""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection
from django.db.models import Count, Max
from django.db.models.functions import TruncHour
from django.utils.dateparse import parse_datetime
from scipy import sparse

from profiles.models import Membership, Segment
from profiles.selectors import profile_get, subject_segments
from recommend.evaluation import Interactions, latest_per_pair
from recommend.models import Dismissal, Experiment, ModelVersion, Placement
from tracking.db import pg_fetchall
from tracking.models import ConsentRecord, Event, Item, Site

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TrainingData:
    """A site's events as matrix inputs, with the ids behind the indices."""

    events: Interactions  # one row per event: subject index, item index, weight, seconds
    item_ids: list[str]  # external item id of each item index (catalog first)
    item_texts: list[str]
    data_from: datetime | None
    data_to: datetime | None

    @property
    def n_events(self) -> int:
        return int(self.events.users.size)

    def matrix(self) -> sparse.csr_matrix:
        """Subjects x items, event weights summed per pair."""
        return self.events.matrix()

    def times(self) -> sparse.csr_matrix:
        """Subjects x items, each pair's latest event time in seconds."""
        e = self.events
        return latest_per_pair(e.users, e.items, e.times, shape=(e.n_users, e.n_items))


def training_data_read(*, site: Site, since: datetime, weights: dict[str, float],
                       progress: Progress | None = None, chunk_size: int = 20_000
                       ) -> TrainingData:
    """Events of the site since ``since`` with a weighted name and an item, and its catalog."""
    catalog = list(Item.objects.filter(site=site).order_by("id").values_list(
        "external_id", "title", "description", "category", "tags"))
    item_index = {row[0]: i for i, row in enumerate(catalog)}
    texts = [item_text(title, description, category, tags)
             for _, title, description, category, tags in catalog]
    subject_index: dict[str, int] = {}
    subjects, items, names, seconds = [], [], [], []
    rows = (Event.objects.filter(site=site, ts__gte=since, name__in=list(weights))
            .exclude(item_id="").order_by().values_list("subject", "item_id", "name", "ts"))
    for count, (subject, item_id, name, ts) in enumerate(rows.iterator(chunk_size=chunk_size), 1):
        subjects.append(subject_index.setdefault(subject, len(subject_index)))
        if item_id not in item_index:
            item_index[item_id] = len(item_index)
            texts.append("")
        items.append(item_index[item_id])
        names.append(name)
        seconds.append(ts.timestamp())
        if progress is not None and count % chunk_size == 0:
            progress(count)
    weight_of = np.array([weights[name] for name in names], dtype=np.float32)
    times = np.array(seconds, dtype=np.float64)
    events = Interactions(users=np.array(subjects, dtype=np.int64),
                          items=np.array(items, dtype=np.int64), weights=weight_of,
                          times=times, n_users=len(subject_index), n_items=len(item_index))
    first, last = (times.min(), times.max()) if times.size else (None, None)
    return TrainingData(events=events, item_ids=list(item_index), item_texts=texts,
                        data_from=_datetime(first), data_to=_datetime(last))


def item_text(title: str, description: str, category: str, tags: object) -> str:
    """The text the content model reads for a catalog item."""
    words = [str(tag) for tag in tags] if isinstance(tags, list) else []
    return " ".join(part for part in (title, description, category, *words) if part)


def _datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(float(seconds), tz=UTC)


def model_version_active(*, site_id: int) -> ModelVersion | None:
    """The site's active model version, if it has one."""
    return ModelVersion.objects.filter(site_id=site_id, is_active=True).first()


def subject_items(*, site_id: int, subject: str, since: datetime, weights: dict[str, float],
                  limit: int = 500) -> list[tuple[str, str]]:
    """A subject's latest (item id, event name) pairs with a weighted name, oldest first."""
    rows = (Event.objects.filter(site_id=site_id, subject=subject, ts__gte=since,
                                 name__in=list(weights)).exclude(item_id="")
            .order_by("-ts", "-id").values_list("item_id", "name")[:limit])
    return list(reversed(rows))


# --- serving -----------------------------------------------------------------------

# Names read besides the weighted ones: dismissals, and impressions and clicks for rotation.
SERVING_NAMES = ("not_interested", "view_item_list", "select_item")


@dataclass(frozen=True)
class ServingRows:
    """A subject's events as serving reads them, newest first, and their dismissals."""

    consented: bool  # personalization allowed (always, when consent was not asked about)
    events: list[tuple[str, str, datetime]]  # (item id, event name, time)
    dismissed: list[str]


def subject_serving_rows(*, site_id: int, subjects: list[str], since: datetime,
                         names: Iterable[str], consent_subjects: list[str] | None,
                         limit: int = 1000) -> ServingRows:
    """The latest (item id, name, time) events of these subjects with one of ``names`` (or
    a serving name: dismissals, impressions, clicks) and their stored dismissals, read
    only if one of ``consent_subjects`` allows personalization (None: not asked).

    One statement (the hot path of an uncached recommendation): the history, the
    dismissals and the consent check, each on its index.
    """
    names = sorted({*names, *SERVING_NAMES})
    if connection.vendor == "postgresql":
        rows = _serving_rows_pg(site_id=site_id, subjects=subjects, since=since, names=names,
                                consent_subjects=consent_subjects, limit=limit)
    else:
        rows = _serving_rows_sql(site_id=site_id, subjects=subjects, since=since, names=names,
                                 consent_subjects=consent_subjects, limit=limit)
    events = [(item, name, _aware(ts)) for part, item, name, ts in rows if part == 0]
    events.sort(key=lambda row: row[2], reverse=True)  # already in order: linear
    return ServingRows(consented=any(part == 2 for part, *_ in rows), events=events,
                       dismissed=[item for part, item, *_ in rows if part == 1])


# "allowed" holds one row when personalization is allowed, none otherwise; {who} and
# {names} are how the subjects and the event names are matched, {consent} the check.
_SERVING_SQL = (
    "WITH allowed AS ({consent}) "
    "SELECT 0, item_id, name, ts FROM (SELECT item_id, name, ts FROM {event} "
    "WHERE site_id = %s AND subject {who} AND ts >= %s AND name {names} AND item_id <> '' "
    "AND EXISTS (SELECT 1 FROM allowed) ORDER BY ts DESC, id DESC LIMIT %s) recent "
    "UNION ALL SELECT 1, item_id, '', NULL FROM {dismissal} "
    "WHERE site_id = %s AND subject {who} AND EXISTS (SELECT 1 FROM allowed) "
    "UNION ALL SELECT 2, '', '', NULL FROM allowed")
_CONSENT_SQL = ("SELECT 1 AS yes WHERE EXISTS (SELECT 1 FROM {consent} WHERE site_id = %s "
                "AND subject {who} AND personalization)")


def _serving_sql(*, who: str, names: str, consent_who: str | None) -> str:
    consent = "SELECT 1 AS yes" if consent_who is None else _CONSENT_SQL.format(
        consent=ConsentRecord._meta.db_table, who=consent_who)
    return _SERVING_SQL.format(consent=consent, event=Event._meta.db_table,
                               dismissal=Dismissal._meta.db_table, who=who, names=names)


# On PostgreSQL the subject lists travel as arrays (the event names, fixed by the settings,
# are written in), so a statement's text does not depend on their lengths and it can be
# prepared once per connection. One subject (every public request) is
# matched with "=": the plan PostgreSQL keeps for the prepared statement then finds the
# subject on its index whatever its value, as a plan for "= ANY(...)" of unknown length
# does not.
def _matching(values: list[str]) -> tuple[str, str | list[str]]:
    return ("= %s", values[0]) if len(values) == 1 else ("= ANY(%s)", values)


def _serving_rows_pg(*, site_id: int, subjects: list[str], since: datetime, names: list[str],
                     consent_subjects: list[str] | None, limit: int) -> list[tuple]:
    who, subjects_param = _matching(subjects)
    consent_who, consent_params = None, []
    if consent_subjects is not None:
        consent_who, consent_param = _matching(consent_subjects)
        consent_params = [site_id, consent_param]
    params = [*consent_params, site_id, subjects_param, since, limit, site_id, subjects_param]
    return pg_fetchall(_serving_text(who, consent_who, tuple(names)), params,
                       prepare=True, binary=True)


_serving_texts: dict[tuple[str, str | None, tuple[str, ...]], str] = {}


def _serving_text(who: str, consent_who: str | None, names: tuple[str, ...]) -> str:
    """The statement for these matchings, the event names (from the settings: the same on
    every call) written in as a literal array: sending them as a parameter cost more, on
    both ends, than the rest of the parameters."""
    text = _serving_texts.get((who, consent_who, names))
    if text is None:
        from psycopg import sql

        literal = sql.Literal(list(names)).as_string(None).replace("%", "%%")
        text = _serving_sql(who=who, names=f"= ANY({literal})", consent_who=consent_who)
        if len(_serving_texts) >= 100:
            _serving_texts.clear()
        _serving_texts[(who, consent_who, names)] = text
    return text


def _serving_rows_sql(*, site_id: int, subjects: list[str], since: datetime, names: list[str],
                      consent_subjects: list[str] | None, limit: int) -> list[tuple]:
    def listed(values: list[str]) -> str:
        return f"IN ({', '.join(['%s'] * len(values))})"

    sql = _serving_sql(who=listed(subjects), names=listed(names),
                       consent_who=None if consent_subjects is None else listed(
                           consent_subjects))
    consent_params = [] if consent_subjects is None else [site_id, *consent_subjects]
    params = [*consent_params, site_id, *subjects, since, *names, limit, site_id, *subjects]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _aware(value: object) -> datetime:
    """A timestamp from a raw cursor (SQLite gives text in UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def user_alias_subjects(*, site: Site, user_subject: str) -> list[str]:
    """The visitor subjects merged into a user's profile (their devices before login)."""
    profile = profile_get(site=site, subject=user_subject)
    if profile is None:
        return []
    aliases = profile.aliases
    return aliases.split() if isinstance(aliases, str) else [str(a) for a in aliases or []]


def subject_latest_context(*, site_id: int, subject: str) -> dict:
    """The context (device, locale, country ...) of the subject's latest event."""
    context = Event.objects.filter(site_id=site_id, subject=subject).order_by("-ts", "-id") \
        .values_list("context", flat=True).first()
    return context if isinstance(context, dict) else {}


def placement_find(*, site_id: int, name: str) -> Placement | None:
    return Placement.objects.filter(site_id=site_id, name=name, is_active=True).first()


def experiment_running(*, placement: Placement) -> Experiment | None:
    """The placement's active experiment with its variants (prefetched), if any."""
    return Experiment.objects.filter(placement=placement, is_active=True) \
        .prefetch_related("variants").first()


def site_latest_event_time(*, site_id: int) -> datetime | None:
    return Event.objects.filter(site_id=site_id).aggregate(latest=Max("ts"))["latest"]


def items_trending(*, site_id: int, window: timedelta, half_life_hours: float,
                   names: Iterable[str], n: int = 200) -> list[tuple[str, float]]:
    """Items by events in the window before the site's latest event, each event weighing
    0.5 ** (its age in hours / half_life_hours); best first."""
    latest = site_latest_event_time(site_id=site_id)
    if latest is None:
        return []
    hourly = (Event.objects.filter(site_id=site_id, ts__gt=latest - window, name__in=list(names))
              .exclude(item_id="").annotate(hour=TruncHour("ts")).order_by()
              .values_list("item_id", "hour").annotate(n=Count("id")))
    scores: Counter[str] = Counter()
    for item_id, hour, count in hourly:
        age_hours = max((latest - hour).total_seconds() / 3600, 0.0)
        scores[item_id] += count * 0.5 ** (age_hours / half_life_hours)
    return [(item, round(score, 6)) for item, score in scores.most_common(n)]


def items_popular(*, site_id: int, since: datetime | None, names: Iterable[str],
                  subjects_of_segment: int | None = None, n: int = 200
                  ) -> list[tuple[str, float]]:
    """Items by distinct subjects with an event of these names since ``since`` (of the
    members of a segment, if given); best first."""
    events = Event.objects.filter(site_id=site_id, name__in=list(names)).exclude(item_id="")
    if since is not None:
        events = events.filter(ts__gte=since)
    if subjects_of_segment is not None:
        members = Membership.objects.filter(segment_id=subjects_of_segment, until__isnull=True)
        events = events.filter(subject__in=members.values("subject"))
    rows = events.order_by().values("item_id").annotate(n=Count("subject", distinct=True)) \
        .order_by("-n", "item_id").values_list("item_id", "n")[:n]
    return [(item, float(count)) for item, count in rows]


def subject_segment_list(*, site: Site, subject: str) -> list[dict]:
    """The subject's current segments (slug, name, kind), rule segments first."""
    return subject_segments(site=site, subject=subject)


def segment_id_for(*, site_id: int, slug: str) -> int | None:
    return Segment.objects.filter(site_id=site_id, slug=slug, is_active=True) \
        .values_list("pk", flat=True).first()
