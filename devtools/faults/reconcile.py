"""What the client was told against what the database holds: the figures and the invariants.

Everything is exact. The server's own books (DailyCount) must balance:
accepted = stored + dropped by reason + duplicates. They must agree with the
outbox (every raw batch processed once) and with the Event table, and every
event a 202 acknowledged must be stored, or dropped for the reason its batch
was built to be dropped for. Deliveries are counted per event id in the raw
batches, so a retry whose first attempt was stored shows up as a duplicate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from devtools.faults.traffic import REJECTED, STORED, Batch, Ledger

DROP_OUTCOMES = ("bot_user_agent", "bot_rate", "noise")
REJECT_OUTCOMES = ("rejected_invalid", "rejected_no_consent", "rejected_too_large")


@dataclass
class ServerState:
    """One site's books, outbox and events, read from PostgreSQL."""

    outcomes: Counter
    raw_batches: int
    raw_events: int
    raw_unprocessed: int
    raw_rejected: Counter
    deliveries: Counter  # event id -> times it reached the outbox
    stored_ids: set[str]
    event_rows: int
    event_row_keys: int  # distinct (event_id, item_index)

    @classmethod
    def read(cls, conn: Any, site_id: int) -> ServerState:
        def rows(sql: str) -> list[tuple]:
            return conn.execute(sql, {"site": site_id}).fetchall()

        outcomes = Counter({outcome: int(n) for outcome, n in rows(
            "SELECT outcome, sum(count) FROM tracking_dailycount WHERE site_id = %(site)s "
            "GROUP BY outcome")})
        ((batches, events, unprocessed),) = rows(
            "SELECT count(*), coalesce(sum(n_events), 0), count(*) FILTER (WHERE processed_at "
            "IS NULL) FROM tracking_rawbatch WHERE site_id = %(site)s")
        rejected = Counter({reason: int(n) for reason, n in rows(
            "SELECT key, sum(value::int) FROM tracking_rawbatch, jsonb_each_text(rejected) "
            "WHERE site_id = %(site)s GROUP BY key")})
        deliveries = Counter({event_id: int(n) for event_id, n in rows(
            "SELECT e->>'event_id', count(*) FROM tracking_rawbatch, "
            "jsonb_array_elements(events::jsonb) e WHERE site_id = %(site)s GROUP BY 1")})
        stored = {str(event_id) for (event_id,) in rows(
            "SELECT event_id FROM tracking_event WHERE site_id = %(site)s AND item_index = 0")}
        ((event_rows, keys),) = rows(
            "SELECT count(*), count(DISTINCT (event_id, item_index)) FROM tracking_event "
            "WHERE site_id = %(site)s")
        return cls(outcomes, int(batches), int(events), int(unprocessed), rejected, deliveries,
                   stored, int(event_rows), int(keys))


@dataclass
class Figures:
    """The published figures of one scenario, and every invariant that failed."""

    name: str
    sent: int  # distinct events the client made
    deliveries_sent: int  # events in batches the client made (a replay counts again)
    requests: int
    statuses: Counter
    accepted_client: int  # events a 202 acknowledged
    accepted: int  # the server's count (DailyCount accepted)
    stored: int
    dropped: dict[str, int]
    duplicates: int
    lost: int
    unacked_batches: int
    extra: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def reconcile(name: str, ledger: Ledger, server: ServerState, *,
              allowed: set[int | str] = frozenset({202}),
              also_stored: set[str] = frozenset()) -> Figures:
    """The figures of a run, and a violation for each invariant that does not hold.

    ``also_stored``: ids of events sent by another client (the browser's tracker)
    that must be stored too.
    """
    batches = ledger.batches
    expected = {**dict.fromkeys(also_stored, STORED), **expected_outcomes(batches)}
    out = server.outcomes
    figures = Figures(
        name=name, sent=len(expected),
        deliveries_sent=sum(len(b.events) for b in batches) + len(also_stored),
        requests=len(ledger.attempts), statuses=ledger.statuses(),
        accepted_client=sum(b.answer["accepted"] for b in batches if b.answer),
        accepted=out["accepted"], stored=out["stored"],
        dropped={k: out[k] for k in (*DROP_OUTCOMES, *REJECT_OUTCOMES) if out[k]},
        duplicates=out["duplicate"], lost=0, unacked_batches=len(ledger.unacked()),
    )
    check = figures.violations.append
    unexpected = {status: n for status, n in figures.statuses.items() if status not in allowed}
    if unexpected:
        check(f"answers other than {sorted(map(str, allowed))}: {unexpected}")
    if figures.unacked_batches:
        check(f"{figures.unacked_batches} batches never answered 202 before the deadline")
    for batch in batches:
        if batch.answer and (problem := answer_mismatch(batch)):
            check(f"batch {batch.number}: {problem}")
            break
    books_check(server, check)
    lost = [i for i in acknowledged_ids(batches, STORED) if i not in server.stored_ids]
    figures.lost = len(lost)
    if lost:
        check(f"LOST: {len(lost)} acknowledged events are not stored (e.g. {lost[0]})")
    outcome_check(expected, server, check)
    return figures


def expected_outcomes(batches: list[Batch]) -> dict[str, str]:
    """Event id -> what must become of it (a replay repeats its original's)."""
    expected: dict[str, str] = {}
    for batch in batches:
        for event_id, outcome in zip(batch.ids(), batch.expected, strict=True):
            expected.setdefault(event_id, outcome)
    return expected


def acknowledged_ids(batches: list[Batch], outcome: str) -> set[str]:
    return {event_id for batch in batches if batch.answer for event_id in batch.ids(outcome)}


def answer_mismatch(batch: Batch) -> str | None:
    """What a 202 answer says differently from what the batch was built to get."""
    rejected = sorted((r["index"], r["reason"]) for r in batch.answer["rejected"])
    want = sorted((i, REJECTED[e]) for i, e in enumerate(batch.expected) if e in REJECTED)
    accepted = len(batch.events) - len(want)
    if rejected != want or batch.answer["accepted"] != accepted:
        return (f"answered accepted={batch.answer['accepted']} rejected={rejected}; "
                f"expected accepted={accepted} rejected={want}")
    return None


def books_check(server: ServerState, check: Any) -> None:
    """The server's books balance and agree with the outbox and the Event table."""
    out = server.outcomes
    dropped = sum(out[k] for k in DROP_OUTCOMES)
    if out["accepted"] != out["stored"] + dropped + out["duplicate"]:
        check(f"conservation: accepted {out['accepted']} != stored {out['stored']} + dropped "
              f"{dropped} + duplicates {out['duplicate']}")
    if server.raw_unprocessed:
        check(f"{server.raw_unprocessed} raw batches still unprocessed")
    if out["accepted"] != server.raw_events:
        check(f"accepted {out['accepted']} != events in the outbox {server.raw_events} "
              "(a batch processed twice, or not at all)")
    repeats = sum(n - 1 for n in server.deliveries.values())
    if out["duplicate"] != repeats:
        check(f"duplicates {out['duplicate']} != repeated deliveries in the outbox {repeats}")
    for reason in ("invalid", "no_consent", "too_large"):
        if out[f"rejected_{reason}"] != server.raw_rejected[reason]:
            check(f"rejected_{reason} {out[f'rejected_{reason}']} != the outbox's "
                  f"{server.raw_rejected[reason]}")
    if out["stored"] != len(server.stored_ids):
        check(f"stored {out['stored']} != events in the Event table {len(server.stored_ids)}")
    if server.event_rows != server.event_row_keys:
        check(f"DUPLICATE ROWS: {server.event_rows - server.event_row_keys} in the Event table")


def outcome_check(expected: dict[str, str], server: ServerState, check: Any) -> None:
    """Each delivered event ended as built to: stored, or counted once per delivery as its drop."""
    unknown = server.stored_ids - expected.keys()
    if unknown:
        check(f"{len(unknown)} stored events the client never sent")
    per_outcome: Counter = Counter()
    for event_id, outcome in expected.items():
        delivered = server.deliveries[event_id]
        stored = event_id in server.stored_ids
        if outcome == STORED:
            if delivered and not stored:
                per_outcome["delivered, not stored"] += 1
        elif stored:
            per_outcome[f"stored, should be {outcome}"] += 1
        elif outcome not in REJECTED:
            per_outcome[outcome] += delivered
    for reason in DROP_OUTCOMES:
        if server.outcomes[reason] != per_outcome.pop(reason, 0):
            check(f"{reason} {server.outcomes[reason]} != deliveries built to be dropped so")
    if per_outcome:
        check(f"events that did not end as built: {dict(per_outcome)}")
