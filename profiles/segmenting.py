"""Rule segments kept current: evaluating subjects, memberships with since/until, the cache.

Subjects are evaluated when their events arrive (``segments_evaluate`` on a
batch's owners) and on schedule (``segments_sweep``), which catches what time
alone changes: a window that empties, "last seen more than 30 days ago", new
RFM cut points, a segment just defined in the admin. The sweep narrows each
segment's candidates with a database filter that every match satisfies, then
decides with the same ``rules.rule_holds`` as the real-time path.
"""

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from profiles import rfm, rules
from profiles.identity import junk_user_subjects
from profiles.models import Condition, Membership, Profile, Segment, SegmentSize
from profiles.reading import from_us, subjects_rows
from profiles.state import affinity_normalized
from tracking.db import is_postgresql, pg_fetchall
from tracking.models import Site

CHUNK = 2000
SIZE_EVERY_SECONDS = 3600 - 60  # one chart point an hour per segment


def cache_key(site_id: int, subject: str) -> str:
    return f"profiles:segments:{site_id}:{subject}"


def rule_of(segment: Segment) -> rules.Rule:
    """The rule of a segment, from its conditions (grouped by their group number)."""
    groups: dict[int, list[rules.Test]] = defaultdict(list)
    for condition in segment.conditions.all():
        groups[condition.group].append(test_of(condition))
    return rules.Rule(groups=tuple(tuple(groups[g]) for g in sorted(groups)))


def test_of(condition: Condition) -> rules.Test:
    return rules.Test(
        kind=condition.kind, negate=condition.negate, event_name=condition.event_name,
        item_id=condition.item_id, category=condition.category, min_count=condition.min_count,
        within_hours=condition.within_hours, values=frozenset(map(str, condition.values or [])),
        days=condition.days, metric=condition.metric, op=condition.op, number=condition.number,
    )


_RULES_SECONDS = 5.0  # how long a process keeps a site's rules (edits elsewhere show after)
_rules_cache: dict[int, tuple[float, list[tuple[Segment, rules.Rule]]]] = {}


def rule_segments(*, site: Site) -> list[tuple[Segment, rules.Rule]]:
    """The active rule segments of a site with their rules (kept a few seconds: every
    batch asks)."""
    now = time.monotonic()
    hit = _rules_cache.get(site.pk)
    if hit is not None and now - hit[0] < _RULES_SECONDS:
        return hit[1]
    segments = Segment.objects.filter(site=site, kind=Segment.Kind.RULE, is_active=True) \
        .prefetch_related("conditions")
    found = [(segment, rule_of(segment)) for segment in segments]
    _rules_cache[site.pk] = (now, found)
    return found


def rule_segments_forget(**_: Any) -> None:
    """Drop the kept rules (a segment or condition changed in this process)."""
    _rules_cache.clear()


for _model in (Segment, Condition):
    post_save.connect(rule_segments_forget, sender=_model, dispatch_uid=f"rules-{_model}")
    post_delete.connect(rule_segments_forget, sender=_model,
                        dispatch_uid=f"rules-del-{_model}")


# --- facts ------------------------------------------------------------------------


def facts_for(*, site: Site, profiles: list[Any], segment_rules: list[rules.Rule],
              as_of: int, events_of: set[str] | None = None) -> dict[str, rules.Facts]:
    """What the rules may look at, per profile subject; events only if a rule counts them,
    and only of the subjects in ``events_of`` if given."""
    from profiles.reading import epoch_us
    from profiles.services import stage_rules

    if not profiles:
        return {}
    population = rfm.Population.of(
        first_seen=[epoch_us(p.first_seen) for p in profiles],
        last_seen=[epoch_us(p.last_seen) for p in profiles],
        last_purchase=[rfm.NO_TIME] * len(profiles), purchases=[p.purchases for p in profiles],
        active_days=[p.active_days for p in profiles], monetary=[p.monetary for p in profiles],
        events=[p.events for p in profiles])
    stages = rfm.stages_compute(
        population, m=np.array([p.m_score or 0 for p in profiles]),
        f=np.array([p.f_score or 0 for p in profiles]), as_of=as_of, rules=stage_rules())
    uses_affinity = any(test.kind == rules.AFFINITY for rule in segment_rules
                        for test in rule.tests)
    wanting = profiles if events_of is None else [p for p in profiles if p.subject in events_of]
    events = _events_by_owner(site, wanting, segment_rules, as_of)
    facts = {}
    for profile, stage, last_seen in zip(profiles, stages, population.last_seen, strict=True):
        facts[profile.subject] = rules.Facts(
            rfm_segment=profile.rfm_segment, stage=str(stage), last_seen=int(last_seen),
            metrics={"events": profile.events, "sessions": profile.sessions,
                     "active_days": profile.active_days, "purchases": profile.purchases,
                     "monetary": profile.monetary,
                     "recency_days": (as_of - int(last_seen)) / rules.DAY_US},
            affinity=affinity_normalized(profile.affinity) if uses_affinity else {},
            events=events.get(profile.subject, ()),
        )
    return facts


def _events_by_owner(site: Site, profiles: list[Any], segment_rules: list[rules.Rule],
                     as_of: int) -> dict[str, list[rules.SeenEvent]]:
    counting = [rule for rule in segment_rules if rule.counts_events]
    if not counting or not profiles:
        return {}
    starts = [rule.events_since(as_of) for rule in counting]
    since = None if None in starts else min(s for s in starts if s is not None)
    named = [rule.event_names for rule in counting]
    names = None if None in named else sorted({n for ns in named if ns for n in ns})
    owners = {p.subject for p in profiles}
    aliases = sorted({alias for p in profiles for alias in p.alias_list} | owners)
    seen: dict[str, list[rules.SeenEvent]] = defaultdict(list)
    for row in subjects_rows(site_id=site.pk, subjects=aliases, since=since, names=names,
                             junk=junk_user_subjects(site=site)):
        if row.owner in owners:
            seen[row.owner].append(rules.SeenEvent(row.ts, row.name, row.item_id, row.category,
                                                   row.item_index == 0))
    return seen


# --- memberships ------------------------------------------------------------------


def memberships_sync(*, segment: Segment, evaluated: Iterable[str] | None, matched: set[str],
                     at: datetime) -> set[str]:
    """Open memberships for new matches, close them for evaluated subjects that no longer
    match (``evaluated=None``: every current member was evaluated); the segment's size
    follows. Returns who changed."""
    current = Membership.objects.filter(segment=segment, until__isnull=True)
    if evaluated is not None:
        current = current.filter(subject__in=list(evaluated))
    members = set(current.values_list("subject", flat=True))
    entering, leaving = matched - members, members - matched
    Membership.objects.bulk_create(
        [Membership(segment=segment, site_id=segment.site_id, subject=subject, since=at)
         for subject in sorted(entering)], batch_size=CHUNK, ignore_conflicts=True)
    leaving_list = sorted(leaving)
    for start in range(0, len(leaving_list), CHUNK):
        Membership.objects.filter(segment=segment, until__isnull=True,
                                  subject__in=leaving_list[start:start + CHUNK]).update(until=at)
    if entering or leaving:
        Segment.objects.filter(pk=segment.pk).update(size=F("size") + len(entering)
                                                     - len(leaving))
    return entering | leaving


def memberships_close(*, site: Site, subjects: Iterable[str], at: datetime) -> int:
    """End every open membership of these subjects (a profile merged away, erased)."""
    subjects = list(subjects)
    if is_postgresql():  # one statement: close them, and the segments' sizes follow
        membership, segment = _table(Membership), _table(Segment)
        ((closed,),) = pg_fetchall(
            f"WITH closed AS (UPDATE {membership} SET until = %b WHERE site_id = %b "
            "AND subject = ANY(%b::text[]) AND until IS NULL RETURNING segment_id), "
            f"sized AS (UPDATE {segment} AS s SET size = s.size - c.n FROM (SELECT segment_id, "
            "count(*) AS n FROM closed GROUP BY segment_id) AS c WHERE s.id = c.segment_id "
            "RETURNING c.n) SELECT COALESCE(sum(n), 0)::int FROM sized", [at, site.pk, subjects])
    else:
        open_ones = Membership.objects.filter(site=site, subject__in=subjects,
                                              until__isnull=True)
        per_segment = dict(open_ones.values_list("segment").annotate(n=Count("pk"))
                           .values_list("segment", "n"))
        closed = open_ones.update(until=at)
        for segment_id, n in per_segment.items():
            Segment.objects.filter(pk=segment_id).update(size=F("size") - n)
    segments_cache_forget(site_id=site.pk, subjects=subjects)
    return closed


def segments_cache_forget(*, site_id: int, subjects: Iterable[str]) -> None:
    """Drop the served memberships of these subjects now, and again when the transaction
    commits (a read in between would cache the memberships the commit replaces)."""
    keys = [cache_key(site_id, subject) for subject in subjects]
    if not keys:
        return
    cache.delete_many(keys)
    if connection.in_atomic_block:
        transaction.on_commit(lambda: cache.delete_many(keys), robust=True)


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def open_memberships(*, segment_ids: list[int], subjects: list[str]) -> dict[int, set[str]]:
    """Which of these subjects are now in each of these segments."""
    if is_postgresql():  # the subjects as one array, not one placeholder each
        rows = pg_fetchall(
            f"SELECT segment_id, subject FROM {_table(Membership)} WHERE until IS NULL "
            "AND segment_id = ANY(%b::bigint[]) AND subject = ANY(%b::text[])",
            [segment_ids, subjects])
    else:
        rows = Membership.objects.filter(segment__in=segment_ids, subject__in=subjects,
                                         until__isnull=True).values_list("segment", "subject")
    current: dict[int, set[str]] = defaultdict(set)
    for segment_id, subject in rows:
        current[segment_id].add(subject)
    return current


Pairs = list[tuple[int, str]]  # (segment id, subject)


def memberships_write(*, site_id: int, entering: Pairs, leaving: Pairs, at: datetime) -> None:
    """Open memberships for ``entering``, close the open ones of ``leaving``; the segments'
    sizes follow."""
    if not entering and not leaving:
        return
    if not is_postgresql():
        _memberships_write_portable(site_id, entering, leaving, at)
        return
    membership, segment = _table(Membership), _table(Segment)
    in_segments, in_subjects = (list(c) for c in zip(*entering, strict=True)) if entering \
        else ([], [])
    out_segments, out_subjects = (list(c) for c in zip(*leaving, strict=True)) if leaving \
        else ([], [])
    # One statement for every segment of the batch; sizes count the rows really written.
    pg_fetchall(
        f"WITH entered AS (INSERT INTO {membership} (segment_id, site_id, subject, since) "
        "SELECT e.segment_id, %b, e.subject, %b FROM unnest(%b::bigint[], %b::text[]) "
        "AS e(segment_id, subject) ON CONFLICT DO NOTHING RETURNING segment_id), "
        f"exited AS (UPDATE {membership} AS m SET until = %b FROM unnest(%b::bigint[], "
        "%b::text[]) AS x(segment_id, subject) WHERE m.segment_id = x.segment_id "
        "AND m.subject = x.subject AND m.until IS NULL RETURNING m.segment_id), "
        "moves AS (SELECT segment_id, 1 AS n FROM entered "
        "UNION ALL SELECT segment_id, -1 FROM exited) "
        f"UPDATE {segment} AS s SET size = s.size + d.n FROM (SELECT segment_id, "
        "sum(n)::int AS n FROM moves GROUP BY segment_id) AS d WHERE s.id = d.segment_id "
        "RETURNING s.id",
        [site_id, at, in_segments, in_subjects, at, out_segments, out_subjects])


def _memberships_write_portable(site_id: int, entering: Pairs, leaving: Pairs,
                                at: datetime) -> None:
    Membership.objects.bulk_create(
        [Membership(segment_id=segment_id, site_id=site_id, subject=subject, since=at)
         for segment_id, subject in entering], batch_size=CHUNK, ignore_conflicts=True)
    moves: dict[int, int] = defaultdict(int)
    for segment_id, _ in entering:
        moves[segment_id] += 1
    by_segment: dict[int, list[str]] = defaultdict(list)
    for segment_id, subject in leaving:
        by_segment[segment_id].append(subject)
    for segment_id, subjects in by_segment.items():
        moves[segment_id] -= Membership.objects.filter(
            segment_id=segment_id, subject__in=subjects, until__isnull=True).update(until=at)
    for segment_id, n in moves.items():
        if n:
            Segment.objects.filter(pk=segment_id).update(size=F("size") + n)


def segments_evaluate(*, site: Site, subjects: Iterable[str], as_of: int,
                      profiles: list[Any] | None = None,
                      new_rows: dict[str, list[Any]] | None = None) -> int:
    """Re-evaluate the active rule segments for these subjects (real time); returns how many
    memberships changed.

    ``profiles`` may give them as just saved. With ``new_rows`` (the batch's rows by
    owner), a rule made only of event counts is re-evaluated just for owners with a row
    it counts: for the others no count moved, and time alone is the sweep's business.
    """
    subjects = sorted(set(subjects))
    segments = rule_segments(site=site)
    if not subjects or not segments:
        return 0
    given = {p.subject: p for p in profiles or ()}
    at = timezone.now()
    changed: set[str] = set()
    for start in range(0, len(subjects), CHUNK):
        chunk = subjects[start:start + CHUNK]
        plan = [(segment, rule, _to_evaluate(rule, chunk, new_rows)) for segment, rule in segments]
        plan = [(segment, rule, who) for segment, rule, who in plan if who]
        if not plan:
            continue
        wanted = sorted({s for _, _, who in plan for s in who})
        found = [given[s] for s in wanted if s in given]
        missing = [s for s in wanted if s not in given]
        if missing:
            found += list(Profile.objects.filter(site=site, subject__in=missing))
        events_of = {s for _, rule, who in plan if rule.counts_events for s in who}
        facts = facts_for(site=site, profiles=found, segment_rules=[r for _, r, _ in plan],
                          as_of=as_of, events_of=events_of)
        current = open_memberships(segment_ids=[segment.pk for segment, _, _ in plan],
                                   subjects=wanted)
        entering: Pairs = []
        leaving: Pairs = []
        for segment, rule, who in plan:
            members = current.get(segment.pk, set())
            for subject in who:
                holds = subject in facts and rules.rule_holds(rule, facts[subject], now=as_of)
                if holds and subject not in members:
                    entering.append((segment.pk, subject))
                elif not holds and subject in members:
                    leaving.append((segment.pk, subject))
        memberships_write(site_id=site.pk, entering=entering, leaving=leaving, at=at)
        changed.update(subject for _, subject in entering)
        changed.update(subject for _, subject in leaving)
    segments_cache_forget(site_id=site.pk, subjects=changed)
    return len(changed)


def _to_evaluate(rule: rules.Rule, subjects: list[str],
                 new_rows: dict[str, list[Any]] | None) -> list[str]:
    if new_rows is None or rule.has_profile_tests:
        return subjects
    return [s for s in subjects if rule.touched_by(new_rows.get(s, ()))]


def segment_evaluate_all(*, segment: Segment, rule: rules.Rule, as_of: int) -> int:
    """Evaluate one segment over its candidates (a superset from the database); changes."""
    site = segment.site
    at = timezone.now()
    matched: set[str] = set()
    candidates = Profile.objects.filter(site=site).filter(prefilter(rule, as_of=as_of))
    last_pk = 0
    while True:
        profiles = list(candidates.filter(pk__gt=last_pk).order_by("pk")[:CHUNK])
        if not profiles:
            break
        last_pk = profiles[-1].pk
        facts = facts_for(site=site, profiles=profiles, segment_rules=[rule], as_of=as_of)
        matched |= {s for s, f in facts.items() if rules.rule_holds(rule, f, now=as_of)}
    changed = memberships_sync(segment=segment, evaluated=None, matched=matched, at=at)
    cache.delete_many([cache_key(site.pk, s) for s in changed])
    _segment_sizes_refresh(segments=[segment])
    return len(changed)


def segments_sweep(*, site: Site, as_of: int, time_only: bool = False) -> int:
    """Evaluate active rule segments of a site in full (only those time alone can change,
    with ``time_only``); record sizes. Returns how many memberships changed."""
    changes = 0
    for segment, rule in rule_segments(site=site):
        if rule.depends_on_time or not time_only:
            changes += segment_evaluate_all(segment=segment, rule=rule, as_of=as_of)
    all_segments = list(Segment.objects.filter(site=site, is_active=True))
    _segment_sizes_refresh(segments=all_segments)
    segment_sizes_record(segments=all_segments)
    return changes


def _segment_sizes_refresh(*, segments: list[Segment]) -> None:
    for segment in segments:
        size = Membership.objects.filter(segment=segment, until__isnull=True).count()
        if size != segment.size:
            segment.size = size
            Segment.objects.filter(pk=segment.pk).update(size=size)


def segment_sizes_record(*, segments: list[Segment], at: datetime | None = None) -> int:
    """A chart point per segment, at most one an hour; returns how many were recorded."""
    at = at or timezone.now()
    latest = dict(SegmentSize.objects.filter(segment__in=segments).values_list("segment")
                  .order_by().annotate(at=Max("at")).values_list("segment", "at"))
    points = [SegmentSize(segment=segment, at=at, size=segment.size) for segment in segments
              if segment.pk not in latest
              or (at - latest[segment.pk]).total_seconds() >= SIZE_EVERY_SECONDS]
    SegmentSize.objects.bulk_create(points)
    return len(points)


# --- the database pre-filter ------------------------------------------------------------


def prefilter(rule: rules.Rule, *, as_of: int) -> Q:
    """A filter on Profile that every subject satisfying the rule passes (maybe more)."""
    groups = []
    for group in rule.groups:
        parts = [q for q in (_test_filter(test, as_of) for test in group) if q is not None]
        if not parts:
            return Q()
        combined = parts[0]
        for part in parts[1:]:
            combined &= part
        groups.append(combined)
    if not groups:
        return Q(pk__in=[])
    result = groups[0]
    for group in groups[1:]:
        result |= group
    return result


def _test_filter(test: rules.Test, as_of: int) -> Q | None:
    q = _positive_filter(test, as_of)
    if q is None:
        return None
    if test.negate:
        # Negating is exact only for filters that decide the test exactly by themselves.
        exact = test.kind in (rules.RFM_SEGMENT, rules.LAST_SEEN) or (
            test.kind == rules.METRIC and test.metric != "recency_days")
        return ~q if exact else None
    return q


def _positive_filter(test: rules.Test, as_of: int) -> Q | None:
    if test.kind == rules.EVENTS:
        return None if test.window_us is None else Q(last_seen__gte=from_us(as_of
                                                                            - test.window_us))
    if test.kind == rules.RFM_SEGMENT:
        return Q(rfm_segment__in=sorted(test.values))
    if test.kind == rules.LAST_SEEN:
        return Q(last_seen__lt=from_us(as_of - (test.days or 0) * rules.DAY_US))
    if test.kind == rules.METRIC:
        number = test.number or 0.0
        if test.metric == "recency_days":  # rounded outwards: a superset either way
            if test.op == "gte":
                return Q(last_seen__lte=from_us(as_of - math.floor(number * rules.DAY_US)))
            return Q(last_seen__gte=from_us(as_of - math.ceil(number * rules.DAY_US)))
        return Q(**{f"{test.metric}__{test.op}": number})
    return None
