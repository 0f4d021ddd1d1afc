"""The scenarios: each breaks one part under load and returns the reconciled figures.

Every wait is bounded; a scenario that cannot finish in time reports what it
saw as violations rather than hanging.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from devtools.faults import stack as stacks
from devtools.faults.reconcile import Figures, reconcile
from devtools.faults.traffic import Batch, BatchPlanner, Ledger, Sender, iterate

EVENTS_PER_BATCH_MEAN = 19.6  # the planner's mix: a few one-event noise batches
SETTLE_TIMEOUT = 120.0  # the longest wait for the outbox to drain after the last fault


@dataclass
class Options:
    events: int  # events of the worker-kill load (the other loads are sized from it)
    rate: float  # events per second offered
    seed: int
    keep_logs: bool
    browser: bool


class Load:
    """A Sender running in a thread while the scenario breaks things in this one."""

    def __init__(self, stack: stacks.Stack, options: Options, *, ledger: Ledger | None = None,
                 speed: float = 1.0) -> None:
        self.ledger = ledger or Ledger()
        # Eight threads: retries in an outage do not hold back the pace of new batches.
        self.sender = Sender(host="127.0.0.1", port=stack.web_port, public_key=stack.public_key,
                             origin=stacks.ORIGIN, ledger=self.ledger,
                             rate=speed * options.rate / EVENTS_PER_BATCH_MEAN, threads=8)
        self.thread: threading.Thread | None = None
        self.started = 0.0

    def start(self, source: Callable[[], Batch | None], *, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        self.thread = threading.Thread(target=self.sender.run, args=(source,),
                                       kwargs={"deadline": deadline}, daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def at(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the load started."""
        time.sleep(max(0.0, self.started + seconds - time.monotonic()))

    def join(self) -> float:
        """Wait until every batch is answered (or the deadline passed); returns time.time()."""
        assert self.thread is not None
        self.thread.join()
        return time.time()


def note(text: str) -> None:
    """A line of the scenario's timeline, for the log of a slow or failed run."""
    print(f"   {time.strftime('%H:%M:%S')} {text}", flush=True)


def planner(options: Options, events: int) -> BatchPlanner:
    batches = int(events / EVENTS_PER_BATCH_MEAN) + 1
    return BatchPlanner(rng=random.Random(options.seed), visitors=max(500, batches // 2),
                        noise_visitors=batches // BatchPlanner.NOISE_EVERY + 1)


def prepared(stack: stacks.Stack, plan: BatchPlanner, origins: list[str] | None = None) -> None:
    """A site with the planner's visitors consented; gunicorn, beat and the worker running."""
    started = time.monotonic()
    stack.worker_spawn()  # the worker, beat and gunicorn start while the site is made
    stack.beat_start()
    failed: list[BaseException] = []

    def make_site() -> None:
        try:
            stack.site_create(origins=[stacks.ORIGIN, *(origins or [])],
                              consenting=plan.consenting)
        except BaseException as error:  # reported in the main thread below
            failed.append(error)

    site = threading.Thread(target=make_site)
    site.start()
    stack.web_start()
    site.join(300)
    if failed or site.is_alive():
        raise RuntimeError(f"the site and its consenting visitors could not be made: {failed}")
    stack.worker_wait(timeout=60)
    print(f"   ready in {time.monotonic() - started:.1f} s: a site, {plan.consenting:,} consented "
          f"visitors, gunicorn ({stacks.GUNICORN_WORKERS} workers), beat, a worker (prefork, "
          f"{stacks.WORKER_CONCURRENCY} processes)", flush=True)


def settled(stack: stacks.Stack, load_end: float) -> tuple[float | None, float]:
    """Wait for the outbox to drain; (seconds since ``load_end`` when it did, or None)."""
    drained = stack.wait_drained(timeout=SETTLE_TIMEOUT)
    return (None if drained is None else time.time() - load_end), time.time()


# --- kill -9 the worker ------------------------------------------------------


def worker_kills(stack: stacks.Stack, options: Options, kills: int = 5) -> Figures:
    """kill -9 the worker (main and pool processes) at random moments; restart it each time."""
    plan = planner(options, options.events)
    prepared(stack, plan)
    rng = random.Random(options.seed + 1)
    seconds = options.events / options.rate
    # One random moment in each of `kills` equal slots of the load's middle 90 %.
    slot = 0.9 * seconds / kills
    moments = [0.05 * seconds + slot * (i + rng.random()) for i in range(kills)]
    load = Load(stack, options)
    load.start(iterate(plan.batches(events=options.events)), seconds=seconds + 90)
    record = []
    last_kill = 0.0
    for moment in moments:
        load.at(moment)
        killed, in_transaction = stack.worker_kill()
        last_kill = time.time()
        restart = stack.worker_start()
        record.append(f"{moment:.1f} s: {killed} processes"
                      f"{' mid-transaction' if in_transaction else ''}, up in {restart:.1f} s")
    load_end = load.join()
    after_load, _ = settled(stack, load_end)
    figures = reconcile("worker kill -9", load.ledger, stack.server_state())
    all_stored = None if after_load is None else after_load + (load_end - last_kill)
    figures.extra.update({"kills": record, "all stored after the last kill s": all_stored})
    if all_stored is None:
        figures.violations.append(f"raw batches still waiting {SETTLE_TIMEOUT:.0f} s after "
                                  "the load ended")
    return figures


# --- restart and kill Redis --------------------------------------------------

REDIS_DOWN_SECONDS = 3.0
RESUME_LIMIT = 30.0


def redis_outages(stack: stacks.Stack, options: Options) -> Figures:
    """Restart Redis twice and kill -9 it once under load (Redis keeps nothing: no persistence)."""
    events = options.events // 2
    plan = planner(options, events)
    prepared(stack, plan)
    seconds = events / options.rate
    load = Load(stack, options)
    load.start(iterate(plan.batches(events=events)), seconds=seconds + 90)
    outages = []
    for fraction, how in ((0.15, "restart"), (0.4, "restart"), (0.65, "kill -9")):
        load.at(fraction * seconds)
        down = time.time()
        if how == "kill -9":
            stack.redis.kill()
        else:
            stack.redis.stop()
        time.sleep(REDIS_DOWN_SECONDS)
        stack.redis.start()
        outages.append((how, down, time.time(), stack.backlog()))
    load_end = load.join()
    after_load, _ = settled(stack, load_end)
    figures = reconcile("redis restart x2, kill -9 x1", load.ledger, stack.server_state())
    notes = []
    for how, down, up, waiting in outages:
        during = dict(load.ledger.statuses(down, up))
        resumed = stack.first_processed_after(up)
        notes.append(f"{how}: down {up - down:.1f} s, answers meanwhile {during} "
                     f"({load.ledger.latency_ms(down, up)}), "
                     f"{waiting} batches waiting on its return, the worker processing again "
                     f"{'never' if resumed is None else f'{resumed:.1f} s'} after")
        if waiting and (resumed is None or resumed > RESUME_LIMIT):
            figures.violations.append(f"after the Redis {how}, the worker did not resume "
                                      f"within {RESUME_LIMIT:.0f} s ({resumed})")
        if not during.get(202):
            figures.violations.append(f"no collect answered while Redis was down ({how})")
    figures.extra.update({"outages": notes, "drained after the load s": after_load})
    if after_load is None:
        figures.violations.append("raw batches still waiting after the load")
    return figures


# --- stop PostgreSQL -------------------------------------------------------

PG_DOWN_SECONDS = 30.0


def postgres_outage(stack: stacks.Stack, options: Options) -> Figures:
    """Stop PostgreSQL for 30 s under load (and under a real browser's tracker)."""
    from devtools.faults import browser as browsers

    events = int(options.rate * (PG_DOWN_SECONDS + 14))
    plan = planner(options, events)
    with browsers.page_server(stack) as page_origin:
        prepared(stack, plan, origins=[page_origin] if options.browser else [])
        tab = browsers.Tab.open(stack, page_origin) if options.browser else None
        try:
            return _postgres_outage(stack, options, plan, events, tab)
        finally:
            if tab is not None:
                tab.close()


def _postgres_outage(stack: stacks.Stack, options: Options, plan: BatchPlanner, events: int,
                     tab: Any) -> Figures:
    load = Load(stack, options)
    load.start(iterate(plan.batches(events=events)), seconds=events / options.rate + 120)
    note(f"load started: {events:,} events")
    load.at(6)
    down = time.time()
    stack.pg.stop()
    stopped = time.time()  # requests under way when the stop began may still commit
    note(f"PostgreSQL stopped (in {stopped - down:.1f} s)")
    queued_in_outage = tab.events_during(PG_DOWN_SECONDS) if tab else []
    while time.time() - down < PG_DOWN_SECONDS:
        time.sleep(0.2)
    # PostgreSQL takes connections (and commits) before start() has seen its port open:
    # the outage is the span from the stop's end to the start's beginning.
    restarting = time.time()
    stack.pg.start()
    note(f"PostgreSQL started again (in {time.time() - restarting:.1f} s)")
    browser_notes = tab.delivered(timeout=120) if tab else {}
    load_end = load.join()
    note("load ended")
    after_load, _ = settled(stack, load_end)
    note("outbox drained")
    state = stack.server_state()
    browser_ids = tab.sent_ids() if tab else set()
    figures = reconcile("postgres stopped 30 s", load.ledger, state, allowed={202, 503},
                        also_stored=browser_ids)
    during = load.ledger.statuses(stopped, restarting)
    first_202 = min((a.at for a in load.ledger.attempts if a.at > restarting and a.status == 202),
                    default=None)
    no_retry_after = sum(1 for a in load.ledger.attempts if a.status == 503
                         and not (a.retry_after or "").isdigit())
    figures.extra.update({
        "down s": round(restarting - down, 1),
        "answers while down": f"{dict(during)} ({load.ledger.latency_ms(stopped, restarting)})",
        "answers before the stop": load.ledger.latency_ms(0.0, down),
        "first 202 after restart s": None if first_202 is None else first_202 - restarting,
        "drained after the load s": after_load,
    })
    if no_retry_after:
        figures.violations.append(f"{no_retry_after} answers 503 without Retry-After")
    if during.get(202):
        figures.violations.append(f"{during[202]} answers 202 while PostgreSQL was down")
    if tab:
        figures.extra["browser"] = {**browser_notes, "queued while down": len(queued_in_outage)}
        missing = browser_ids - state.stored_ids
        if missing or not queued_in_outage:
            figures.violations.append(f"browser: {len(missing)} of {len(browser_ids)} tracker "
                                      f"events not stored; {len(queued_in_outage)} queued in "
                                      "the outage")
        if not browser_notes.get("queue empty"):
            figures.violations.append("browser: the tracker's queue still holds events")
    return figures


# --- replay old events -------------------------------------------------------

REPLAY_EVENTS = 10_000
REPLAYS = 3
DAYS_LATER = 20


def replays(stack: stacks.Stack, options: Options) -> Figures:
    """10,000 events, then the same events three times more, days later, among fresh traffic."""
    plan = planner(options, REPLAY_EVENTS * 2)
    prepared(stack, plan)
    originals, number = _plain(plan, REPLAY_EVENTS)
    load = Load(stack, options)
    load.start(iterate(iter(originals)), seconds=REPLAY_EVENTS / options.rate + 60)
    settled(stack, load.join())
    ids = [event_id for batch in originals for event_id in batch.ids()]
    # Move the stored originals DAYS_LATER days into the past: the database is then as it
    # would be that many days after they arrived, and each replay carries their times.
    stack.db.execute("UPDATE tracking_event SET ts = ts - %s WHERE site_id = %s AND "
                     "event_id = ANY(%s::uuid[])", (timedelta(days=DAYS_LATER), stack.site_id,
                                                    ids))
    rng = random.Random(options.seed + 2)
    fresh = plan.batches(events=REPLAY_EVENTS, start=number)
    rounds = []
    number += 1_000_000  # replays numbered apart from the planner's batches
    for _ in range(REPLAYS):
        for batch in rng.sample(originals, len(originals)):
            number += 1
            rounds.append(batch.resend(number=number, shift=-timedelta(days=DAYS_LATER),
                                       kind="replay"))
    # Twice the pace: three in four of these events are duplicates, cheap to process.
    replay_load = Load(stack, options, ledger=load.ledger, speed=2.0)
    replay_load.start(iterate(_interleave(rounds, fresh, rng)),
                      seconds=(REPLAYS + 1) * REPLAY_EVENTS / options.rate + 60)
    after_load, _ = settled(stack, replay_load.join())
    state = stack.server_state()
    figures = reconcile(f"replay x{REPLAYS}, {DAYS_LATER} days later", load.ledger, state)
    (rows, old) = stack.db.execute(
        "SELECT count(*), count(*) FILTER (WHERE ts < now() - %s) FROM tracking_event "
        "WHERE site_id = %s AND item_index = 0 AND event_id = ANY(%s::uuid[])",
        (timedelta(days=DAYS_LATER - 1), stack.site_id, ids)).fetchone()
    figures.extra.update({"rows for the replayed events": rows,
                          f"of them still dated {DAYS_LATER} days back": old,
                          "drained after the load s": after_load})
    if rows != len(ids) or old != len(ids):
        figures.violations.append(f"the {len(ids)} replayed events have {rows} rows "
                                  f"({old} with their original times)")
    return figures


def _plain(plan: BatchPlanner, events: int) -> tuple[list[Batch], int]:
    """Batches of the planner whose events are all to be stored (the events to replay), and
    the next batch number."""
    out: list[Batch] = []
    number = planned = 0
    while planned < events:
        batch = plan.batch(number)
        number += 1
        if batch.kind == "plain":
            out.append(batch)
            planned += len(batch.events)
    return out, number


def _interleave(replayed: list[Batch], fresh: Iterator[Batch], rng: random.Random
                ) -> Iterator[Batch]:
    """The replays in order, a fresh batch after every third on average."""
    for batch in replayed:
        yield batch
        if rng.random() < 1 / 3:
            extra = next(fresh, None)
            if extra is not None:
                yield extra
    yield from fresh


SCENARIOS: dict[str, Callable[[stacks.Stack, Options], Figures]] = {
    "workers": worker_kills,
    "redis": redis_outages,
    "postgres": postgres_outage,
    "replay": replays,
}
