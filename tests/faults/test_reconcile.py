"""The fault runs' bookkeeping: each invariant it checks fails when its books do not balance."""

import random
from collections import Counter

from devtools.faults.reconcile import ServerState, reconcile
from devtools.faults.traffic import (
    BOT,
    INVALID,
    NO_CONSENT,
    NOISE,
    STORED,
    Attempt,
    BatchPlanner,
    Ledger,
)


def a_run():
    """A ledger of three answered batches (plain, mixed, noise) and the books that match it."""
    planner = BatchPlanner(rng=random.Random(1), visitors=100, noise_visitors=5)
    plain, mixed, noise = planner.batch(0), planner.batch(11), planner.batch(7)
    assert (plain.kind, mixed.kind, noise.kind) == ("plain", "mixed", "noise")
    ledger = Ledger()
    for batch in (plain, mixed, noise):
        ledger.add(batch)
        rejected = [{"index": i, "reason": {INVALID: "invalid", NO_CONSENT: "no_consent"}[e]}
                    for i, e in enumerate(batch.expected) if e in (INVALID, NO_CONSENT)]
        ledger.record(batch, Attempt(0.0, 202, 0.01, None),
                      {"accepted": len(batch.events) - len(rejected), "rejected": rejected})
    stored = plain.ids(STORED) + mixed.ids(STORED)
    server = ServerState(
        outcomes=Counter({"accepted": 39, "stored": 38, "noise": 1, "rejected_invalid": 1,
                          "rejected_no_consent": 1}),
        raw_batches=3, raw_events=39, raw_unprocessed=0,
        raw_rejected=Counter({"invalid": 1, "no_consent": 1}),
        deliveries=Counter({i: 1 for i in stored + noise.ids()}),
        stored_ids=set(stored), event_rows=40, event_row_keys=40)
    return ledger, server, plain


def test_books_that_balance_pass():
    ledger, server, _ = a_run()
    figures = reconcile("run", ledger, server)
    assert figures.violations == []
    assert (figures.sent, figures.accepted_client, figures.stored, figures.lost) == (41, 39, 38, 0)


def test_an_acknowledged_event_missing_from_the_events_is_lost():
    ledger, server, plain = a_run()
    server.stored_ids.discard(plain.ids()[0])
    server.outcomes["stored"] -= 1
    server.outcomes["noise"] += 1  # books balanced by a wrong drop: still caught
    figures = reconcile("run", ledger, server)
    assert figures.lost == 1
    assert any(v.startswith("LOST: 1") for v in figures.violations)
    assert any(v.startswith("noise 2 !=") for v in figures.violations)


def test_a_duplicate_that_no_repeated_delivery_explains_fails():
    ledger, server, _ = a_run()
    server.outcomes["duplicate"] += 1
    server.outcomes["accepted"] += 1
    server.raw_events += 1
    violations = reconcile("run", ledger, server).violations
    assert violations == ["duplicates 1 != repeated deliveries in the outbox 0"]


def test_books_that_do_not_balance_fail_conservation():
    ledger, server, _ = a_run()
    server.outcomes["stored"] -= 1
    violations = reconcile("run", ledger, server).violations
    assert any(v.startswith("conservation: accepted 39 != stored 37") for v in violations)


def test_an_unexpected_answer_or_duplicate_rows_fail():
    ledger, server, plain = a_run()
    ledger.record(plain, Attempt(1.0, 500, 0.01, None), None)
    server.event_rows += 2
    violations = reconcile("run", ledger, server).violations
    assert "answers other than ['202']: {500: 1}" in violations
    assert "DUPLICATE ROWS: 2 in the Event table" in violations


def test_the_planner_mixes_in_drops_at_known_places():
    planner = BatchPlanner(rng=random.Random(2), visitors=50, noise_visitors=3)
    batches = [planner.batch(n) for n in range(200)]
    # Noise needs a visitor of its own: the fourth noise slot (157) falls back to plain.
    assert Counter(b.kind for b in batches) == {"plain": 184, "bot": 5, "mixed": 8, "noise": 3}
    bot = batches[3]
    assert bot.expected == [BOT] * 20 and "Googlebot" in bot.user_agent
    assert batches[7].expected == [NOISE] and batches[7].events[0]["anon_id"] == "a_50"
    mixed = batches[11]
    assert mixed.expected.count(STORED) == 18
    assert (mixed.expected[5], mixed.expected[9]) == (INVALID, NO_CONSENT)
