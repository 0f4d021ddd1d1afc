"""Writing a whole site's profiles at once: the full recompute and the rescore.

PostgreSQL gets COPY (text format, built column by column, timestamps
formatted by numpy) and array-bound UPDATEs; other databases the ORM in chunks.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from django.db import connection
from django.utils import timezone

from profiles import rfm
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
    """Replace all profiles of a site by these settled states, scored together."""
    if is_postgresql():
        return _replace_postgresql(site, states, scorer)
    return _replace_portable(site, states, scorer)


def _replace_portable(site: Site, states: Iterable[ProfileState], scorer: Scorer) -> Written:
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


# Columns written per state as text while streaming, then the vectorized ones.
_STATE_COLUMNS = ("site_id", "subject", "identified", "aliases", "events", "by_type",
                  "sessions", "session_keys", "active_days", "days", "purchases",
                  "purchase_keys", "monetary", "engaged_ms", "devices", "affinity")
_LATE_COLUMNS = ("first_seen", "last_seen", "last_purchase", "r_score", "f_score", "m_score",
                 "rfm_segment", "stage", "updated_at")


def _json(value: Any) -> str:
    # COPY's text format reads backslashes as escapes: double the ones JSON has.
    return orjson.dumps(value).decode().replace("\\", "\\\\")


def _state_text(site_id: int, state: ProfileState) -> str:
    return "\t".join((
        str(site_id), state.subject, "t" if state.identified else "f",
        _json(sorted(state.aliases)), str(state.events), _json(state.by_type),
        str(len(state.sessions)), _json(sorted(state.sessions)), str(len(state.days)),
        _json(sorted(state.days)), str(len(state.purchases)), _json(sorted(state.purchases)),
        repr(float(state.monetary)), str(state.engaged_ms), _json(state.devices),
        _json(state.affinity),
    ))


def _timestamps_text(values: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").astype(object)
    text = text + "+00"
    text[values == rfm.NO_TIME] = "\\N"
    return text


def _replace_postgresql(site: Site, states: Iterable[ProfileState], scorer: Scorer) -> Written:
    columns = _Columns()
    lines: list[str] = []
    for state in states:
        columns.add(state)
        lines.append(_state_text(site.pk, state))
    population = columns.population()
    scored = scorer(population)
    late = [_timestamps_text(population.first_seen), _timestamps_text(population.last_seen),
            _timestamps_text(population.last_purchase)]
    for scores in (scored.r, scored.f, scored.m):
        text = scores.astype(str).astype(object)
        text[scores == 0] = "\\N"
        late.append(text)
    late += [scored.segment, scored.stage]
    now = timezone.now().isoformat()
    table = connection.ops.quote_name(Profile._meta.db_table)
    Profile.objects.filter(site=site).delete()
    names = ", ".join(_STATE_COLUMNS + _LATE_COLUMNS)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for start in range(0, len(lines), 10_000):
            block = [
                "\t".join((line, *(str(column[i]) for column in late), now))
                for i, line in enumerate(lines[start:start + 10_000], start)
            ]
            copy.write("\n".join(block) + "\n")
    return Written(profiles=len(lines), rows=int(population.events.sum()))


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
