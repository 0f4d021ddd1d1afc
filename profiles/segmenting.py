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
from django.db.models import Count, F, Max, Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from profiles import rfm, rules
from profiles.identity import junk_user_subjects
from profiles.models import Condition, Membership, Profile, Segment, SegmentSize
from profiles.reading import from_us, subjects_rows
from profiles.state import affinity_normalized
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
    open_ones = Membership.objects.filter(site=site, subject__in=subjects, until__isnull=True)
    per_segment = dict(open_ones.values_list("segment").annotate(n=Count("pk"))
                       .values_list("segment", "n"))
    closed = open_ones.update(until=at)
    for segment_id, n in per_segment.items():
        Segment.objects.filter(pk=segment_id).update(size=F("size") - n)
    cache.delete_many([cache_key(site.pk, s) for s in subjects])
    return closed


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
        current: dict[int, set[str]] = defaultdict(set)
        for segment_id, subject in Membership.objects.filter(
                segment__in=[segment for segment, _, _ in plan], subject__in=wanted,
                until__isnull=True).values_list("segment", "subject"):
            current[segment_id].add(subject)
        for segment, rule, who in plan:
            matched = {s for s in who if s in facts and rules.rule_holds(rule, facts[s],
                                                                          now=as_of)}
            if matched != current[segment.pk] & set(who):
                changed |= memberships_sync(segment=segment, evaluated=who, matched=matched,
                                            at=at)
    cache.delete_many([cache_key(site.pk, s) for s in changed])
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
