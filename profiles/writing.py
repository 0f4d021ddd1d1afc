"""Writing a whole site's profiles at once: the full recompute and the rescore.

PostgreSQL gets COPY (text format, built column by column, timestamps
formatted by numpy) and array-bound UPDATEs; other databases the ORM in chunks.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import orjson
from django.db import connection
from django.utils import timezone

from profiles import rfm
from profiles.columnar import ProfileColumns
from profiles.models import Profile
from profiles.state import ProfileState
from tracking.db import is_postgresql, pg_fetchall
from tracking.models import Site

Scorer = Callable[[rfm.Population], rfm.Scored]
CHUNK = 2000


@dataclass(frozen=True)
class Written:
    profiles: int
    rows: int  # events folded


class _Columns:
    """The population's measures, gathered while states stream past."""

    def __init__(self) -> None:
        self.first_seen: list[int] = []
        self.last_seen: list[int] = []
        self.last_purchase: list[int] = []
        self.purchases: list[int] = []
        self.active_days: list[int] = []
        self.monetary: list[float] = []
        self.events: list[int] = []

    def add(self, state: ProfileState) -> None:
        self.first_seen.append(state.first_seen)
        self.last_seen.append(state.last_seen)
        self.last_purchase.append(rfm.NO_TIME if state.last_purchase is None
                                  else state.last_purchase)
        self.purchases.append(len(state.purchases))
        self.active_days.append(len(state.days))
        self.monetary.append(state.monetary)
        self.events.append(state.events)

    def population(self) -> rfm.Population:
        return rfm.Population.of(**vars(self))


def profiles_replace(*, site: Site, states: Iterable[ProfileState], scorer: Scorer) -> Written:
    """Replace all profiles of a site by these settled states, scored together (ORM)."""
    from profiles.services import derived_values, profile_build

    kept = list(states)
    columns = _Columns()
    for state in kept:
        columns.add(state)
    scored = scorer(columns.population())
    Profile.objects.filter(site=site).delete()
    profiles = [profile_build(site=site, state=state, derived=derived_values(scored, i))
                for i, state in enumerate(kept)]
    Profile.objects.bulk_create(profiles, batch_size=CHUNK)
    return Written(profiles=len(kept), rows=sum(columns.events))


def _copy_escaped(values: Any) -> list[str]:
    """Texts for COPY's text format: backslashes doubled (JSON and keys may have some)."""
    return [v.replace("\\", "\\\\") if "\\" in v else v for v in values]


def _timestamps_text(values: np.ndarray) -> list[str]:
    text = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").astype(object)
    text = text + "+00"
    text[values == rfm.NO_TIME] = "\\N"
    return text.tolist()


def _ints_text(values: np.ndarray, *, none_below: int | None = None) -> list[str]:
    text = values.astype(str).astype(object)
    if none_below is not None:
        text[values < none_below] = "\\N"
    return text.tolist()


def profiles_copy(*, site: Site, columns: ProfileColumns, scorer: Scorer) -> Written:
    """Replace all profiles of a site by these columns, scored together (PostgreSQL COPY)."""
    population = rfm.Population.of(
        first_seen=columns.first_seen, last_seen=columns.last_seen,
        last_purchase=columns.last_purchase, purchases=columns.purchases,
        active_days=columns.active_days, monetary=columns.monetary, events=columns.events)
    scored = scorer(population)
    n = len(columns.subject)
    texts = {
        "site_id": [str(site.pk)] * n, "subject": columns.subject,
        "identified": np.where(columns.identified, "t", "f").tolist(),
        "aliases": columns.aliases.tolist(), "events": _ints_text(columns.events),
        "by_type": _copy_escaped(columns.by_type.tolist()),
        "sessions": _ints_text(columns.sessions),
        "session_keys": columns.session_keys.tolist(),
        "active_days": _ints_text(columns.active_days), "days": columns.days.tolist(),
        "purchases": _ints_text(columns.purchases),
        "purchase_keys": _copy_escaped(columns.purchase_keys.tolist()),
        "monetary": [repr(v) for v in columns.monetary.tolist()],
        "engaged_ms": _ints_text(columns.engaged_ms),
        "devices": _copy_escaped(columns.devices.tolist()),
        "affinity": _copy_escaped(columns.affinity.tolist()),
        "first_seen": _timestamps_text(columns.first_seen),
        "last_seen": _timestamps_text(columns.last_seen),
        "last_purchase": _timestamps_text(columns.last_purchase),
        "r_score": _ints_text(scored.r, none_below=1), "f_score": _ints_text(scored.f,
                                                                          none_below=1),
        "m_score": _ints_text(scored.m, none_below=1), "rfm_segment": scored.segment.tolist(),
        "stage": scored.stage.tolist(), "updated_at": [timezone.now().isoformat()] * n,
    }
    table = connection.ops.quote_name(Profile._meta.db_table)
    Profile.objects.filter(site=site).delete()
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({', '.join(texts)}) FROM STDIN") as copy:
        rows = zip(*texts.values(), strict=True)
        while block := list(islice(rows, 20_000)):
            copy.write("\n".join(map("\t".join, block)) + "\n")
    with connection.cursor() as cursor:  # fresh statistics, or lookups by subject scan it all
        cursor.execute(f"ANALYZE {table}")
    return Written(profiles=n, rows=int(columns.events.sum()))


# --- upsert of a batch's profiles ------------------------------------------------------

_UPSERT = (("site_id", "bigint"), ("subject", "text"), ("identified", "boolean"),
           ("aliases", "text"), ("first_seen", "timestamptz"), ("last_seen", "timestamptz"),
           ("last_purchase", "timestamptz"), ("events", "integer"), ("by_type", "jsonb"),
           ("sessions", "integer"), ("session_keys", "text"), ("active_days", "integer"),
           ("days", "text"), ("purchases", "integer"), ("purchase_keys", "text"),
           ("monetary", "float8"), ("engaged_ms", "bigint"), ("devices", "jsonb"),
           ("affinity", "jsonb"), ("r_score", "smallint"), ("f_score", "smallint"),
           ("m_score", "smallint"), ("rfm_segment", "text"), ("stage", "text"),
           ("updated_at", "timestamptz"))


# Member lists an update may leave as stored (None: unchanged; a stored profile only).
_KEPT_WHEN_NULL = frozenset({"session_keys", "days", "purchase_keys"})


def profiles_upsert(*, profiles: list[Any]) -> None:
    """Insert or update these profiles (dataclass rows with every field) by (site, subject);
    a member list given as None stays as stored."""
    if not profiles:
        return
    if not is_postgresql():
        _profiles_upsert_portable(profiles)
        return
    now = timezone.now()
    for profile in profiles:
        profile.updated_at = now
    # One statement, the rows as one JSON text (orjson writes the dataclasses in C, and
    # PostgreSQL parses them in C): binding a typed array per column cost more in Python
    # (psycopg packs every element) than the whole statement takes in the server.
    names = ", ".join(name for name, _ in _UPSERT)
    typed = ", ".join(f"{name} {kind}" for name, kind in _UPSERT)
    table = connection.ops.quote_name(Profile._meta.db_table)
    updates = ", ".join(
        f"{name} = COALESCE(t.{name}, p.{name})" if name in _KEPT_WHEN_NULL
        else f"{name} = t.{name}" for name, _ in _UPSERT[2:])
    # Stored profiles are updated (a None member list keeps the stored one), the others
    # inserted: an INSERT ... ON CONFLICT would check NOT NULL on the None lists first.
    # The caller holds the site's lock, so no profile of it appears or goes meanwhile.
    pg_fetchall(
        f"WITH t AS MATERIALIZED (SELECT * FROM json_to_recordset(%b::json) AS t({typed})), "
        f"updated AS (UPDATE {table} AS p SET {updates} FROM t WHERE p.site_id = t.site_id "
        "AND p.subject = t.subject RETURNING p.subject) "
        f"INSERT INTO {table} ({names}) SELECT {names} FROM t "
        "WHERE t.subject NOT IN (SELECT subject FROM updated) RETURNING id",
        [orjson.dumps(profiles).decode()])


def _profiles_upsert_portable(profiles: list[Any]) -> None:
    kept = [p for p in profiles if any(getattr(p, name) is None for name in _KEPT_WHEN_NULL)]
    if kept:  # fill in the unchanged member lists from the stored rows
        stored = {row[0]: row[1:] for row in Profile.objects.filter(
            site_id=kept[0].site_id, subject__in=[p.subject for p in kept])
            .values_list("subject", *sorted(_KEPT_WHEN_NULL))}
        for profile in kept:
            for name, value in zip(sorted(_KEPT_WHEN_NULL), stored[profile.subject],
                                   strict=True):
                if getattr(profile, name) is None:
                    setattr(profile, name, value)
    Profile.objects.bulk_create(
        [Profile(**{name: getattr(p, name) for name, _ in _UPSERT}) for p in profiles],
        update_conflicts=True, unique_fields=["site", "subject"],
        update_fields=[name for name, _ in _UPSERT[2:]])


# --- rescore ------------------------------------------------------------------------


def scores_update(*, site: Site, scorer: Scorer) -> int:
    """Score every stored profile of a site anew; write the changed ones. Returns how many."""
    pks, population, current = _population_read(site)
    if not len(pks):
        scorer(population)
        return 0
    scored = scorer(population)
    new = [scored.r, scored.f, scored.m, scored.segment, scored.stage]
    changed = np.zeros(len(pks), dtype=bool)
    for old, value in zip(current, new, strict=True):
        changed |= old != value
    rows = [(int(pks[i]), *(_plain(column[i]) for column in new))
            for i in np.flatnonzero(changed)]
    if is_postgresql():
        _update_postgresql(rows)
    else:
        _update_portable(rows)
    return len(rows)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def _population_read(site: Site) -> tuple[np.ndarray, rfm.Population, list[np.ndarray]]:
    """Ids, measures and current derived fields of every profile of a site."""
    names = ("first_seen", "last_seen", "last_purchase", "purchases", "active_days",
             "monetary", "events")
    if is_postgresql():
        table = connection.ops.quote_name(Profile._meta.db_table)
        rows = pg_fetchall(
            "SELECT id, (extract(epoch FROM first_seen) * 1000000)::bigint, "
            "(extract(epoch FROM last_seen) * 1000000)::bigint, "
            "COALESCE((extract(epoch FROM last_purchase) * 1000000)::bigint, %b), "
            "purchases, active_days, monetary, events, COALESCE(r_score, 0), "
            "COALESCE(f_score, 0), COALESCE(m_score, 0), rfm_segment, stage "
            f"FROM {table} WHERE site_id = %b", [rfm.NO_TIME, site.pk])
    else:
        from profiles.reading import epoch_us

        rows = [
            (pk, epoch_us(first), epoch_us(last),
             rfm.NO_TIME if purchase is None else epoch_us(purchase), *rest)
            for pk, first, last, purchase, *rest in Profile.objects.filter(site=site)
            .values_list("pk", *names, "r_score", "f_score", "m_score", "rfm_segment", "stage")
        ]
        rows = [(*row[:8], row[8] or 0, row[9] or 0, row[10] or 0, *row[11:]) for row in rows]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 13
    population = rfm.Population.of(**dict(zip(names, columns[1:8], strict=True)))
    current = [np.asarray(columns[i], dtype=np.int64) for i in (8, 9, 10)] + \
        [np.asarray(columns[i], dtype=object) for i in (11, 12)]
    return np.asarray(columns[0], dtype=np.int64), population, current


def _update_postgresql(rows: list[tuple[Any, ...]]) -> None:
    table = connection.ops.quote_name(Profile._meta.db_table)
    for start in range(0, len(rows), 50_000):
        chunk = rows[start:start + 50_000]
        ids, r, f, m, segment, stage = (list(column) for column in zip(*chunk, strict=True))
        r, f, m = ([v or None for v in column] for column in (r, f, m))
        pg_fetchall(
            f"UPDATE {table} AS p SET r_score = u.r, f_score = u.f, m_score = u.m, "
            "rfm_segment = u.segment, stage = u.stage "
            "FROM unnest(%b::bigint[], %b::int[], %b::int[], %b::int[], %b::text[], %b::text[]) "
            "AS u(id, r, f, m, segment, stage) WHERE p.id = u.id RETURNING p.id",
            [ids, r, f, m, segment, stage])


def _update_portable(rows: list[tuple[Any, ...]]) -> None:
    profiles = [Profile(pk=pk, r_score=r or None, f_score=f or None, m_score=m or None,
                        rfm_segment=segment, stage=stage)
                for pk, r, f, m, segment, stage in rows]
    Profile.objects.bulk_update(profiles, ["r_score", "f_score", "m_score", "rfm_segment",
                                           "stage"], batch_size=CHUNK)
