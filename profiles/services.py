"""Writes of the profiles app: fold new events in, recompute a site, rescore, erase.

Every write of a site's profiles holds the lock on its ``SiteState`` row, so
the incremental path, the full recompute and the rescore never interleave.
The full recompute takes every event up to a *watermark*: the largest event
id at a moment when no insert into the event table was in flight, so every
event at or below it is committed and every later one is above it. The
incremental path then folds only events above the watermark, and a batch it
has folded is remembered (``AppliedBatch``), so a task run twice counts once.
"""

import gc
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from profiles import clustering, rfm, segmenting
from profiles.columnar import profiles_from_rows
from profiles.conf import profile_settings
from profiles.identity import Candidate, candidates_of, junk_user_subjects, links_apply
from profiles.models import AppliedBatch, IdentityLink, Membership, Profile, Segment, SiteState
from profiles.reading import batch_rows, epoch_us, from_us, site_row_columns, site_rows_by_owner
from profiles.segmenting import memberships_close, segments_evaluate
from profiles.state import DAY_US, EventRow, FoldRules, ProfileState
from profiles.writing import profiles_copy, profiles_replace, profiles_upsert, scores_update
from tracking.db import is_postgresql, pg_fetchall
from tracking.models import Event, Site

# Profile fields that hold the state (the rest are derived: scores, segment, stage).
STATE_FIELDS = ("identified", "aliases", "first_seen", "last_seen", "last_purchase", "events",
                "by_type", "sessions", "session_keys", "active_days", "days", "purchases",
                "purchase_keys", "monetary", "engaged_ms", "devices", "affinity")
DERIVED_FIELDS = ("r_score", "f_score", "m_score", "rfm_segment", "stage")


def fold_rules() -> FoldRules:
    return FoldRules(weights=profile_settings.AFFINITY_WEIGHTS,
                     half_life_us=profile_settings.AFFINITY_HALF_LIFE_DAYS * DAY_US)


def stage_rules() -> rfm.StageRules:
    s = profile_settings
    return rfm.StageRules(new_days=s.NEW_DAYS, at_risk_days=s.AT_RISK_DAYS,
                          churn_days=s.CHURN_DAYS)


def site_state_lock(*, site: Site) -> SiteState:
    """The site's bookkeeping row, locked until the transaction ends (call inside one)."""
    state = SiteState.objects.select_for_update().filter(site=site).first()
    if state is None:
        SiteState.objects.get_or_create(site=site)
        state = SiteState.objects.select_for_update().get(site=site)
    return state


def site_cuts(state: SiteState) -> rfm.Cuts | None:
    return rfm.Cuts.from_json(state.rfm_mode, state.rfm_cuts)


def site_now(state: SiteState) -> int:
    """The site's "now" in microseconds: the wall clock, or its latest event (data clock)."""
    return epoch_us(state.now())


# --- conversions between the state and the row ----------------------------------------


def state_of(profile: Profile | dict[str, Any]) -> ProfileState:
    """The running state held by a stored profile (an instance, or its values())."""
    values = profile if isinstance(profile, dict) else \
        {name: getattr(profile, name) for name in ("subject", *STATE_FIELDS)}
    values = dict(values)
    for name in ("first_seen", "last_seen", "last_purchase"):
        if values[name] is not None:
            values[name] = epoch_us(values[name])
    return ProfileState.from_fields(values)


@dataclass(slots=True)
class ProfileRow:
    """A profile's values as just written by the incremental path (lighter than a model
    instance; the segment rules read the same attributes). ``session_keys``, ``days``
    and ``purchase_keys`` are None when the stored ones did not change."""

    site_id: int
    subject: str
    identified: bool
    aliases: str
    first_seen: Any
    last_seen: Any
    last_purchase: Any
    events: int
    by_type: dict[str, int]
    sessions: int
    session_keys: str | None
    active_days: int
    days: str | None
    purchases: int
    purchase_keys: str | None
    monetary: float
    engaged_ms: int
    devices: dict[str, int]
    affinity: dict[str, float]
    r_score: int | None
    f_score: int | None
    m_score: int | None
    rfm_segment: str
    stage: str
    updated_at: Any = None

    @property
    def alias_list(self) -> list[str]:
        return self.aliases.split()


def population_of(states: list[ProfileState]) -> rfm.Population:
    return rfm.Population.of(
        first_seen=[s.first_seen for s in states], last_seen=[s.last_seen for s in states],
        last_purchase=[rfm.NO_TIME if s.last_purchase is None else s.last_purchase
                       for s in states],
        purchases=[len(s.purchases) for s in states], active_days=[len(s.days) for s in states],
        monetary=[s.monetary for s in states], events=[s.events for s in states],
    )


def derived_values(scored: rfm.Scored, index: int) -> dict[str, Any]:
    r = int(scored.r[index])
    return {"r_score": r or None, "f_score": int(scored.f[index]) or None,
            "m_score": int(scored.m[index]) or None,
            "rfm_segment": scored.segment[index], "stage": scored.stage[index]}


def profile_values(*, state: ProfileState, derived: dict[str, Any]) -> dict[str, Any]:
    """The field values of a profile holding a settled state and its derived fields."""
    values = state.to_fields()
    for name in ("first_seen", "last_seen", "last_purchase"):
        if values[name] is not None:
            values[name] = from_us(values[name])
    return {**values, **derived}


def profile_build(*, site: Site, state: ProfileState, derived: dict[str, Any]) -> Profile:
    """An unsaved Profile holding a settled state and its derived fields."""
    return Profile(site=site, **profile_values(state=state, derived=derived))


# --- incremental ---------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    """What one batch did: rows folded, owners updated, anonymous profiles merged away."""

    rows: int = 0
    owners: list[str] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # anon subject -> user subject
    repeated: bool = False
    profiles: list["ProfileRow"] = field(default_factory=list)  # as saved
    rows_by_owner: dict[str, list[EventRow]] = field(default_factory=dict)
    site: Site | None = None
    as_of: int = 0  # the site's "now" (microseconds) when they were saved


def batch_digest(event_pks: Iterable[int]) -> str:
    return hashlib.sha1(",".join(map(str, sorted(event_pks))).encode()).hexdigest()


def profile_events_apply(*, site_id: int, event_pks: list[int]) -> ApplyResult:
    """Fold these new events into their owners' profiles (cost proportional to the batch)."""
    if not event_pks:
        return ApplyResult()
    rules = fold_rules()
    with transaction.atomic(savepoint=False):  # inside the caller's transaction, if any
        state = _site_state_lock_by_id(site_id)
        if state is None:
            return ApplyResult()
        site = state.site
        if not _batch_claim(site, event_pks):
            return ApplyResult(repeated=True)
        rows = batch_rows(site_id=site.pk, pks=event_pks, after_pk=state.watermark,
                          junk=junk_user_subjects(site=site))
        links = links_apply(site=site, cap=profile_settings.LINK_CAP_PER_DAY,
                            candidates=[Candidate(r.subject, r.user_subject, r.ts / 1e6)
                                        for r in rows if r.item_index == 0 and r.user_subject
                                        and r.subject != r.user_subject])
        if not rows:
            return ApplyResult()
        merged = {link.anon: link.user for link in links}
        if merged:  # rows read before these links existed: their anonymous rows move now
            rows = [row._replace(owner=merged[row.subject])
                    if row.user_subject is None and row.subject in merged else row
                    for row in rows]
        states, counts_before = _states_fold(site, rows, merged, rules)
        clock = max([epoch_us(state.clock) if state.clock else 0, *(r.ts for r in rows)])
        state.clock = from_us(clock)
        state.save(update_fields=["clock"])
        as_of = site_now(state)
        profiles = _profiles_upsert(site, list(states.values()), counts_before,
                                    site_cuts(state), as_of)
        if merged:
            Profile.objects.filter(site=site, subject__in=list(merged)).delete()
    by_owner: dict[str, list[EventRow]] = defaultdict(list)
    for row in rows:
        by_owner[row.owner].append(row)
    return ApplyResult(rows=len(rows), owners=sorted(states), merged=merged, profiles=profiles,
                       rows_by_owner=dict(by_owner), site=site, as_of=as_of)


def _site_state_lock_by_id(site_id: int) -> SiteState | None:
    """The site's locked bookkeeping row with its site in one query (None: no such site)."""
    state = SiteState.objects.select_for_update(of=("self",)).select_related("site") \
        .filter(site_id=site_id).first()
    if state is None:
        site = Site.objects.filter(pk=site_id).first()
        state = None if site is None else site_state_lock(site=site)
    return state


def _batch_claim(site: Site, event_pks: list[int]) -> bool:
    """Record this batch as applied; False if it already was (a task run twice)."""
    digest = batch_digest(event_pks)
    if not is_postgresql():
        _, created = AppliedBatch.objects.get_or_create(
            site=site, digest=digest, defaults={"max_pk": max(event_pks)})
        return created
    table = connection.ops.quote_name(AppliedBatch._meta.db_table)
    return bool(pg_fetchall(
        f"INSERT INTO {table} (site_id, digest, max_pk) VALUES (%b, %b, %b) "
        "ON CONFLICT (site_id, digest) DO NOTHING RETURNING id",
        [site.pk, digest, max(event_pks)]))


def profile_batch_process(*, site_id: int, event_pks: list[int]) -> int:
    """Fold a batch into profiles, then move its subjects in and out of rule segments.

    One transaction: one commit per batch, and a retry after a failure anywhere redoes it
    all (the batch is not left applied with its segments unmoved).
    """
    with transaction.atomic():
        result = profile_events_apply(site_id=site_id, event_pks=event_pks)
        if not result.owners or result.site is None:
            return result.rows
        if result.merged:
            memberships_close(site=result.site, subjects=result.merged, at=timezone.now())
        segments_evaluate(site=result.site, subjects=result.owners, as_of=result.as_of,
                          profiles=result.profiles, new_rows=result.rows_by_owner)
    return result.rows


def _states_fold(site: Site, rows: list[EventRow], merged: dict[str, str], rules: FoldRules
                 ) -> tuple[dict[str, ProfileState], dict[str, tuple[int, int, int]]]:
    """The owners' states after merging newly linked anonymous profiles and these rows,
    and the member counts (sessions, days, purchases) of the stored ones before."""
    by_owner: dict[str, list[EventRow]] = defaultdict(list)
    for row in rows:
        by_owner[row.owner].append(row)
    wanted = set(by_owner) | set(merged) | set(merged.values())
    stored = profiles_stored(site=site, subjects=sorted(wanted))
    states: dict[str, ProfileState] = {}
    sizes: dict[str, tuple[int, int, int]] = {}

    def state_for(owner: str) -> ProfileState:
        if owner not in states:
            if owner in stored:
                state = states[owner] = state_of(stored[owner])
                sizes[owner] = _member_counts(state)
            else:
                states[owner] = ProfileState(subject=owner)
        return states[owner]

    for anon, user in merged.items():
        if anon in stored:
            state_for(user).merge(state_of(stored[anon]), rules)
    for owner, owner_rows in by_owner.items():
        state_for(owner).add_rows(owner_rows, rules)
    for state in states.values():
        state.settle(rules)
    return states, sizes


def _member_counts(state: ProfileState) -> tuple[int, int, int]:
    return len(state.sessions), len(state.days), len(state.purchases)


def profiles_stored(*, site: Site, subjects: list[str]) -> dict[str, dict[str, Any]]:
    """The state fields of these stored profiles, by subject."""
    if not is_postgresql():
        return {p["subject"]: p for p in Profile.objects.filter(site=site, subject__in=subjects)
                .values("subject", *STATE_FIELDS)}
    table = connection.ops.quote_name(Profile._meta.db_table)
    names = ("subject", *STATE_FIELDS)
    rows = pg_fetchall(f"SELECT {', '.join(names)} FROM {table} WHERE site_id = %b "
                       "AND subject = ANY(%b::text[])", [site.pk, subjects])
    stored = {}
    for row in rows:
        values = dict(zip(names, row, strict=True))
        for name in ("by_type", "devices", "affinity"):  # Django leaves jsonb as text
            if isinstance(values[name], str):
                values[name] = orjson.loads(values[name])
        stored[row[0]] = values
    return stored


def _profiles_upsert(site: Site, states: list[ProfileState],
                     counts_before: dict[str, tuple[int, int, int]], cuts: rfm.Cuts | None,
                     as_of: int) -> list[ProfileRow]:
    scored = rfm.scores_compute(population_of(states), cuts, as_of=as_of, rules=stage_rules())
    profiles = _profile_rows(site.pk, states, scored, counts_before)
    profiles_upsert(profiles=profiles)
    return profiles


def _profile_rows(site_id: int, states: list[ProfileState], scored: rfm.Scored,
                  counts_before: dict[str, tuple[int, int, int]]) -> list[ProfileRow]:
    """The rows of these settled states and their scores (``ProfileState.to_fields`` for a
    batch). A member list that did not grow is left as stored (None): a set only grows,
    so the same size means the same members, and a frequent visitor's thousands of
    session keys are then neither sorted, sent nor rewritten."""
    r, f, m = scored.r.tolist(), scored.f.tolist(), scored.m.tolist()
    segment, stage = scored.segment.tolist(), scored.stage.tolist()
    rows = []
    for i, state in enumerate(states):
        before = counts_before.get(state.subject)
        sessions, days, purchases = _member_counts(state)
        rows.append(ProfileRow(
            site_id=site_id, subject=state.subject, identified=state.identified,
            aliases=" ".join(sorted(state.aliases - {state.subject})),
            first_seen=from_us(state.first_seen), last_seen=from_us(state.last_seen),
            last_purchase=None if state.last_purchase is None else from_us(state.last_purchase),
            events=state.events, by_type=state.by_type, sessions=sessions,
            session_keys=None if before and before[0] == sessions
            else " ".join(sorted(state.sessions)),
            active_days=days,
            days=None if before and before[1] == days else " ".join(map(str, sorted(state.days))),
            purchases=purchases,
            purchase_keys=None if before and before[2] == purchases
            else " ".join(sorted(state.purchases)),
            monetary=state.monetary, engaged_ms=state.engaged_ms, devices=state.devices,
            affinity=state.affinity, r_score=r[i] or None, f_score=f[i] or None,
            m_score=m[i] or None, rfm_segment=segment[i], stage=stage[i]))
    return rows


# --- full recompute ------------------------------------------------------------------


Progress = Callable[[int], object]


@dataclass(frozen=True)
class RecomputeResult:
    events: int
    profiles: int
    watermark: int
    seconds: float


def committed_events_watermark(*, site: Site) -> int:
    """The largest event id such that every event at or below it is committed.

    PostgreSQL: a SHARE lock on the event table waits for the inserts in flight
    (they hold ROW EXCLUSIVE) and lets none start, so ids handed out before are
    committed or gone and later ones are larger. The lock is taken in a savepoint
    and released at once by rolling back to it; call inside a transaction.
    """
    if not is_postgresql():
        return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    table = connection.ops.quote_name(Event._meta.db_table)
    savepoint = transaction.savepoint()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '30s'")
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
            cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")
            (max_pk,) = cursor.fetchone()
    finally:
        transaction.savepoint_rollback(savepoint)  # releases the lock
    return int(max_pk)


def profiles_recompute(*, site_id: int, progress: Progress | None = None) -> RecomputeResult:
    """Rebuild every profile of a site from its events; cut points and scores anew."""
    started = timezone.now()
    site = Site.objects.get(pk=site_id)
    rules = fold_rules()
    with transaction.atomic():
        state = site_state_lock(site=site)
        upto = committed_events_watermark(site=site)
        links_apply(site=site, cap=profile_settings.LINK_CAP_PER_DAY,
                    candidates=candidates_of(site_id=site.pk, upto_pk=upto))
        junk = junk_user_subjects(site=site)
        if is_postgresql():  # by columns: seconds for a million profiles
            with gc_paused():
                rows = site_row_columns(site_id=site.pk, upto_pk=upto, junk=junk,
                                        progress=progress)
                columns = profiles_from_rows(rows, rules)
                del rows
                written = profiles_copy(site=site, columns=columns, scorer=_Scorer(state))
        else:  # one state at a time, as the incremental path folds
            stream = site_rows_by_owner(site_id=site.pk, upto_pk=upto, junk=junk)
            written = profiles_replace(site=site, scorer=_Scorer(state),
                                       states=_states_stream(_counted(stream, progress), rules))
        state.watermark = upto
        state.recomputed_at = timezone.now()
        state.save()
        AppliedBatch.objects.filter(site=site, max_pk__lte=upto).delete()
    return RecomputeResult(events=written.rows, profiles=written.profiles, watermark=upto,
                           seconds=(timezone.now() - started).total_seconds())


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: millions of new tuples and strings (none in
    a cycle) would each time make it walk every object, for minutes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _counted(rows: Iterator[EventRow], progress: Progress | None) -> Iterator[EventRow]:
    if progress is None:
        yield from rows
        return
    n = 0
    for row in rows:
        yield row
        n += 1
        if n == 10_000:
            progress(n)
            n = 0
    progress(n)


def _states_stream(rows: Iterator[EventRow], rules: FoldRules) -> Iterator[ProfileState]:
    """One settled state per owner, from rows grouped by owner."""
    for owner, owner_rows in itertools.groupby(rows, key=attrgetter("owner")):
        state = ProfileState(subject=owner)
        state.add_rows(owner_rows, rules)
        state.settle(rules)
        yield state


class _Scorer:
    """Derived fields for a whole population at once: new cuts, the clock, scores."""

    def __init__(self, state: SiteState) -> None:
        self.state = state

    def __call__(self, population: rfm.Population) -> rfm.Scored:
        cuts = rfm.cuts_compute(population)
        latest = int(population.last_seen.max()) if len(population.last_seen) else 0
        clock = max(epoch_us(self.state.clock) if self.state.clock else 0, latest)
        self.state.clock = from_us(clock) if clock else None
        _cuts_store(self.state, cuts)
        return rfm.scores_compute(population, cuts, as_of=site_now(self.state),
                                  rules=stage_rules())


def _cuts_store(state: SiteState, cuts: rfm.Cuts) -> None:
    state.rfm_mode = cuts.mode.value
    state.rfm_cuts = cuts.as_json()
    state.cuts_at = timezone.now()


# --- rescore on schedule -------------------------------------------------------------


def profiles_rescore(*, site_id: int) -> int:
    """New cut points from the current population; rescore and restage every profile.

    Returns how many profiles changed. Scores of new events use these cut points
    until the next rescore.
    """
    site = Site.objects.get(pk=site_id)
    with transaction.atomic():
        state = site_state_lock(site=site)
        changed = scores_update(site=site, scorer=_Scorer(state))
        state.save()
    return changed


# --- segments on schedule ---------------------------------------------------------


def segments_sweep(*, site_id: int, time_only: bool = False) -> int:
    """Rule segments evaluated in full (all, or those time alone changes), sizes recorded."""
    site = Site.objects.get(pk=site_id)
    state, _ = SiteState.objects.get_or_create(site=site)
    return segmenting.segments_sweep(site=site, as_of=site_now(state), time_only=time_only)


def clusters_refit(*, site_id: int) -> int:
    """Refit the K-Means segments of a site; returns k (0: too few profiles)."""
    site = Site.objects.get(pk=site_id)
    state, _ = SiteState.objects.get_or_create(site=site)
    return clustering.clusters_refit(site=site, as_of=site_now(state))


def segment_evaluate_by_id(*, segment_id: int) -> int:
    segment = Segment.objects.filter(pk=segment_id, kind=Segment.Kind.RULE,
                                     is_active=True).first()
    return 0 if segment is None else segment_evaluate(segment=segment)


@dataclass(frozen=True)
class RebuildResult:
    profiles: int
    events: int
    seconds: float
    segment_changes: int
    clusters: int | None  # k, 0 with too few profiles, None when not refitted


def profiles_rebuild(*, site_id: int, progress: Progress | None = None,
                     refit_clusters: bool = True) -> RebuildResult:
    """Everything anew: profiles and RFM, rule segment memberships, clusters."""
    result = profiles_recompute(site_id=site_id, progress=progress)
    changes = segments_sweep(site_id=site_id)
    k = clusters_refit(site_id=site_id) if refit_clusters else None
    return RebuildResult(profiles=result.profiles, events=result.events,
                         seconds=result.seconds, segment_changes=changes, clusters=k)


def segment_evaluate(*, segment: Segment) -> int:
    """Evaluate one rule segment over the whole site now (after it was edited)."""
    state, _ = SiteState.objects.get_or_create(site=segment.site)
    rule = segmenting.rule_of(segment)
    return segmenting.segment_evaluate_all(segment=segment, rule=rule, as_of=site_now(state))


# --- erasure ----------------------------------------------------------------------


def profile_erase(*, site: Site, subjects: Iterable[str]) -> int:
    """Delete the profiles, links and memberships of these subject hashes (erasure)."""
    subjects = set(subjects)
    with transaction.atomic():
        site_state_lock(site=site)
        owners = set(IdentityLink.objects.filter(site=site, anon_subject__in=subjects)
                     .values_list("user_subject", flat=True))
        owners |= subjects
        deleted, _ = Profile.objects.filter(site=site, subject__in=owners).delete()
        IdentityLink.objects.filter(site=site, anon_subject__in=subjects).delete()
        IdentityLink.objects.filter(site=site, user_subject__in=subjects).delete()
        memberships = Membership.objects.filter(site=site, subject__in=owners)
        for segment_id, n in memberships.filter(until__isnull=True).values_list("segment") \
                .annotate(n=Count("pk")).values_list("segment", "n"):
            Segment.objects.filter(pk=segment_id).update(size=F("size") - n)
        memberships.delete()
    return deleted
