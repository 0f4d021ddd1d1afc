"""Rule segments as data: conditions, groups, and whether a subject satisfies them (pure).

A rule is a list of groups; a group holds when all of its conditions hold
(AND) and the rule holds when any group does (OR). A condition with
``negate`` must fail. Everything a rule looks at is in ``Facts``: the profile's
measures and, when a rule counts events, the subject's events of the window.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

EVENTS = "events"
RFM_SEGMENT = "rfm"
STAGE = "stage"
LAST_SEEN = "last_seen"
METRIC = "metric"
AFFINITY = "affinity"
KINDS = (EVENTS, RFM_SEGMENT, STAGE, LAST_SEEN, METRIC, AFFINITY)
METRICS = ("events", "sessions", "active_days", "purchases", "monetary", "recency_days")


@dataclass(frozen=True)
class Test:
    """One condition, as the admin defines it."""

    kind: str
    negate: bool = False
    event_name: str = ""
    item_id: str = ""
    category: str = ""
    min_count: int = 1
    within_hours: int | None = None
    values: frozenset[str] = frozenset()
    days: int | None = None
    metric: str = ""
    op: str = "gte"
    number: float | None = None

    @property
    def window_us(self) -> int | None:
        return None if self.within_hours is None else self.within_hours * HOUR_US

    def counts(self, name: str, item_id: str, category: str | None) -> bool:
        """Does an event condition count a row of this name, item and category?"""
        return (not self.event_name or name == self.event_name) and \
            (not self.item_id or item_id == self.item_id) and \
            (not self.category or category == self.category)

    @property
    def depends_on_time(self) -> bool:
        """Can it change with time alone, with no new event?"""
        return (self.kind == EVENTS and self.within_hours is not None) or \
            self.kind in (LAST_SEEN, STAGE) or \
            (self.kind == METRIC and self.metric == "recency_days")


@dataclass(frozen=True)
class Rule:
    groups: tuple[tuple[Test, ...], ...]

    @property
    def tests(self) -> Iterable[Test]:
        return (test for group in self.groups for test in group)

    @property
    def counts_events(self) -> bool:
        return any(test.kind == EVENTS for test in self.tests)

    @property
    def depends_on_time(self) -> bool:
        return any(test.depends_on_time for test in self.tests)

    @property
    def has_profile_tests(self) -> bool:
        """Does any condition look at the profile (which any event may change)?"""
        return any(test.kind != EVENTS for test in self.tests)

    @property
    def event_names(self) -> list[str] | None:
        """The event names its event conditions count (None: some counts any name)."""
        names = {test.event_name for test in self.tests if test.kind == EVENTS}
        return None if "" in names else sorted(names)

    def touched_by(self, rows: Iterable[Any]) -> bool:
        """Could these new rows (with name, item_id, category) change an event count?"""
        tests = [test for test in self.tests if test.kind == EVENTS]
        return any(test.counts(row.name, row.item_id, row.category)
                   for row in rows for test in tests)

    def events_since(self, now: int) -> int | None:
        """The earliest event time any condition looks at (None: all history)."""
        windows = [test.window_us for test in self.tests if test.kind == EVENTS]
        if not windows or None in windows:
            return None
        return now - max(w for w in windows if w is not None)


@dataclass(frozen=True, slots=True)
class SeenEvent:
    ts: int  # microseconds since the epoch
    name: str
    item_id: str
    category: str | None
    first: bool  # the event's first row (an event with several items has one row per item)


@dataclass
class Facts:
    """What a rule may look at of one subject."""

    rfm_segment: str
    stage: str
    last_seen: int  # microseconds since the epoch
    metrics: dict[str, float]
    affinity: dict[str, float]  # normalized 0..1
    events: Sequence[SeenEvent] = field(default_factory=tuple)


def rule_holds(rule: Rule, facts: Facts, *, now: int) -> bool:
    """Whether the subject is in the segment at ``now`` (microseconds)."""
    return any(all(_test_holds(test, facts, now) != test.negate for test in group)
               for group in rule.groups if group)


def _test_holds(test: Test, facts: Facts, now: int) -> bool:
    if test.kind == EVENTS:
        return _count(test, facts.events, now) >= test.min_count
    if test.kind == RFM_SEGMENT:
        return facts.rfm_segment in test.values
    if test.kind == STAGE:
        return facts.stage in test.values
    if test.kind == LAST_SEEN:
        return now - facts.last_seen > (test.days or 0) * DAY_US
    if test.kind == METRIC:
        value = facts.metrics.get(test.metric, 0.0)
        number = test.number or 0.0
        return value >= number if test.op == "gte" else value <= number
    if test.kind == AFFINITY:
        return facts.affinity.get(test.category, 0.0) >= (test.number or 0.0)
    raise ValueError(f"unknown condition kind {test.kind!r}")


def _count(test: Test, events: Sequence[SeenEvent], now: int) -> int:
    """Events that match; with an item or category, each matching item counts."""
    since = None if test.window_us is None else now - test.window_us
    per_item = bool(test.item_id or test.category)
    return sum(
        1 for event in events
        if (since is None or event.ts >= since) and (per_item or event.first)
        and test.counts(event.name, event.item_id, event.category)
    )
