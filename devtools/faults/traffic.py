"""The collect load: paced batches shaped like the tracker's, retried as the tracker retries.

Each batch is one visitor's, and each of its events carries what must become
of it: stored, or dropped for a known reason (noise, a crawler's user agent, an
invalid event, a visitor without consent). A batch is sent again, with the same
event ids, until a 202 answers it; a 503's Retry-After is honoured.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

EVENTS_PER_BATCH = 20
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
CRAWLER_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# What becomes of an event: stored, or the DailyCount outcome it is dropped as.
STORED = "stored"
NOISE = "noise"
BOT = "bot_user_agent"
INVALID = "rejected_invalid"
NO_CONSENT = "rejected_no_consent"
REJECTED = {INVALID: "invalid", NO_CONSENT: "no_consent"}  # outcome -> reason in the answer
MAX_RETRY_WAIT = 10.0  # the longest wait between attempts unless Retry-After asks more


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Batch:
    """One request's worth of events, what must become of each, and what happened to it."""

    number: int
    events: list[dict[str, Any]]
    expected: list[str]
    user_agent: str = BROWSER_UA
    kind: str = "plain"
    attempts: int = 0
    statuses: list[int | str] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    first_sent: float | None = None
    acked_at: float | None = None

    @property
    def acked(self) -> bool:
        return self.answer is not None

    def ids(self, outcome: str | None = None) -> list[str]:
        return [event["event_id"] for event, expected in zip(self.events, self.expected,
                                                             strict=True)
                if outcome is None or expected == outcome]

    def resend(self, *, number: int, shift: timedelta = timedelta(0), kind: str) -> Batch:
        """The same events (same ids) as a new delivery; times moved by ``shift``."""
        events = [{**event, "ts": iso(datetime.fromisoformat(event["ts"]) + shift)}
                  for event in self.events]
        return Batch(number=number, events=events, expected=list(self.expected),
                     user_agent=self.user_agent, kind=kind)


def wire_event(*, anon_id: str, ts: datetime, rng: random.Random, name: str = "",
               engaged_ms: int | None = None) -> dict[str, Any]:
    """A valid event as the tracker sends it, with one or two items."""
    sku = rng.randint(1, 5000)
    roll = rng.random()
    name = name or ("view_item" if roll < 0.7 else "add_to_cart" if roll < 0.9 else "purchase")
    items = [{"item_id": f"sku-{sku}", "item_name": f"Item {sku}",
              "item_category": f"cat-{sku % 40}", "price": 5 + sku % 95, "quantity": 1}]
    params: dict[str, Any] = {"engaged_ms": rng.randint(2000, 60000)
                              if engaged_ms is None else engaged_ms}
    if name == "purchase":
        items.append({"item_id": f"sku-{sku % 4999 + 1}", "price": 12.5, "quantity": 2})
        params.update(transaction_id=f"t_{uuid.uuid4().hex[:12]}", value=37.5, currency="EUR")
    event = {"event_id": str(uuid.uuid4()), "name": name, "ts": iso(ts), "anon_id": anon_id,
             "session_id": f"s_{anon_id}",
             "page": {"url": f"https://shop.example/p/{sku}", "referrer": "",
                      "title": f"Item {sku}"},
             "context": {"device": "mobile", "viewport": "390x844", "locale": "en-GB",
                         "tz": "Europe/London"},
             "items": items, "params": params}
    if name == "page_view":
        del event["items"]
    return event


class BatchPlanner:
    """Makes the batches of a load: mostly plain visitors, and a known share of drops.

    Visitors ``a_0`` ... ``a_{visitors-1}`` have consented (``consenting`` in all);
    each noise batch uses a visitor of its own beyond them, so its lone short
    page_view is its session's only event. Events of one batch lie half a second
    apart, under the bot rule's 10 a second.
    """

    NOISE_EVERY, BOT_EVERY, MIXED_EVERY = 50, 40, 25

    def __init__(self, *, rng: random.Random, visitors: int, noise_visitors: int) -> None:
        self.rng, self.visitors, self.noise_visitors = rng, visitors, noise_visitors
        self.noise_used = 0

    @property
    def consenting(self) -> int:
        return self.visitors + self.noise_visitors

    def batch(self, number: int) -> Batch:
        now = datetime.now(UTC)
        if number % self.NOISE_EVERY == 7 and self.noise_used < self.noise_visitors:
            anon_id = f"a_{self.visitors + self.noise_used}"
            self.noise_used += 1
            event = wire_event(anon_id=anon_id, ts=now, rng=self.rng, name="page_view",
                               engaged_ms=500)
            return Batch(number, [event], [NOISE], kind="noise")
        anon_id = f"a_{number % self.visitors}"
        events = [wire_event(anon_id=anon_id, ts=now - timedelta(seconds=0.5 * back),
                             rng=self.rng) for back in range(EVENTS_PER_BATCH - 1, -1, -1)]
        if number % self.BOT_EVERY == 3:
            return Batch(number, events, [BOT] * len(events), user_agent=CRAWLER_UA, kind="bot")
        expected = [STORED] * len(events)
        if number % self.MIXED_EVERY == 11:
            events[5]["ts"] = "yesterday at noon"
            events[9]["anon_id"] = f"n_{number}"  # a visitor who never consented
            expected[5], expected[9] = INVALID, NO_CONSENT
            return Batch(number, events, expected, kind="mixed")
        return Batch(number, events, expected)

    def batches(self, *, events: int, start: int = 0) -> Iterator[Batch]:
        """Batches numbered from ``start`` until about ``events`` events were planned."""
        planned, number = 0, start
        while planned < events:
            batch = self.batch(number)
            planned += len(batch.events)
            number += 1
            yield batch


@dataclass
class Attempt:
    at: float  # epoch seconds when the answer came (or the attempt failed)
    status: int | str
    seconds: float
    retry_after: str | None

    @property
    def started(self) -> float:
        return self.at - self.seconds


class Ledger:
    """Every batch and every attempt, shared by the sender threads."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.attempts: list[Attempt] = []
        self.lock = threading.Lock()

    def add(self, batch: Batch) -> None:
        with self.lock:
            self.batches.append(batch)

    def record(self, batch: Batch, attempt: Attempt, answer: dict[str, Any] | None) -> None:
        with self.lock:
            self.attempts.append(attempt)
            batch.attempts += 1
            batch.statuses.append(attempt.status)
            if answer is not None and batch.answer is None:
                batch.answer, batch.acked_at = answer, attempt.at

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter:
        """Answers of the attempts made entirely between these two moments (epoch)."""
        return Counter(a.status for a in self.attempts if since <= a.started and a.at < until)

    def latency_ms(self, since: float = 0.0, until: float = float("inf")) -> str:
        """Median and 99th percentile of the answer times of the attempts in this span."""
        times = sorted(a.seconds for a in self.attempts if since <= a.started and a.at < until)
        if not times:
            return "no attempts"
        return (f"p50 {1000 * times[len(times) // 2]:.0f} ms, "
                f"p99 {1000 * times[int(len(times) * 0.99)]:.0f} ms")

    def unacked(self) -> list[Batch]:
        return [batch for batch in self.batches if not batch.acked]


class Sender:
    """Posts batches from a few threads at a steady pace; retries until each is answered 202.

    ``source`` gives the next new batch (None: no more). New batches go out at
    ``rate`` batches a second; a batch that failed goes again after Retry-After or
    a short backoff, ahead of new ones. ``run`` returns when every batch is
    answered or ``deadline`` (monotonic) passes.
    """

    def __init__(self, *, host: str, port: int, public_key: str, origin: str,
                 ledger: Ledger, rate: float, threads: int = 4, timeout: float = 20.0) -> None:
        self.host, self.port, self.public_key, self.origin = host, port, public_key, origin
        self.ledger, self.interval, self.threads, self.timeout = ledger, 1.0 / rate, threads, \
            timeout
        self.cond = threading.Condition()
        self.retries: list[tuple[float, Batch]] = []
        self.in_flight = 0
        self.next_due = time.monotonic()
        self.source: Callable[[], Batch | None] = lambda: None
        self.exhausted = False

    def run(self, source: Callable[[], Batch | None], *, deadline: float) -> None:
        self.source, self.exhausted, self.next_due = source, False, time.monotonic()
        workers = [threading.Thread(target=self._work, args=(deadline,), daemon=True)
                   for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()) + self.timeout + 5)

    def _take(self, deadline: float) -> Batch | None:
        """The next batch to send (a due retry first), waiting for its time; None when done."""
        with self.cond:
            while time.monotonic() < deadline:
                now = time.monotonic()
                self.retries.sort(key=lambda entry: entry[0])
                if self.retries and self.retries[0][0] <= now:
                    self.in_flight += 1
                    return self.retries.pop(0)[1]
                if not self.exhausted and self.next_due <= now:
                    batch = self.source()
                    if batch is None:
                        self.exhausted = True
                        self.cond.notify_all()
                        continue
                    # Open loop at a fixed pace; after a stall, no burst to catch up.
                    self.next_due = max(self.next_due + self.interval, now - 1.0)
                    self.ledger.add(batch)
                    self.in_flight += 1
                    return batch
                if self.exhausted and not self.retries and not self.in_flight:
                    return None
                waits = [deadline - now]
                if self.retries:
                    waits.append(self.retries[0][0] - now)
                if not self.exhausted:
                    waits.append(self.next_due - now)
                self.cond.wait(max(0.001, min(waits)))
            return None

    def _work(self, deadline: float) -> None:
        while (batch := self._take(deadline)) is not None:
            retry_in = self._send(batch)
            with self.cond:
                self.in_flight -= 1
                if retry_in is not None:
                    self.retries.append((time.monotonic() + retry_in, batch))
                self.cond.notify_all()

    def _send(self, batch: Batch) -> float | None:
        """One attempt; seconds until the next one, or None once answered for good."""
        body = orjson.dumps({"site": self.public_key, "sent_at": iso(datetime.now(UTC)),
                             "events": batch.events})
        headers = {"Content-Type": "text/plain", "Origin": self.origin,
                   "User-Agent": batch.user_agent}
        started = time.monotonic()
        batch.first_sent = batch.first_sent or time.time()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        status: int | str
        answer, retry_after = None, None
        try:
            conn.request("POST", "/api/v1/collect", body, headers)
            response = conn.getresponse()
            status, payload = response.status, response.read()
            retry_after = response.getheader("Retry-After")
            if status == 202:
                answer = orjson.loads(payload)
        except (OSError, http.client.HTTPException) as error:
            status = type(error).__name__
        finally:
            conn.close()
        self.ledger.record(batch, Attempt(time.time(), status, time.monotonic() - started,
                                          retry_after), answer)
        if answer is not None or status in (400, 401, 403, 413, 415):
            return None
        backoff = min(MAX_RETRY_WAIT, 0.25 * 2 ** batch.attempts) * random.uniform(0.5, 1.0)
        return max(backoff, float(retry_after) if retry_after and retry_after.isdigit() else 0)


def iterate(batches: Iterator[Batch]) -> Callable[[], Batch | None]:
    """A Sender source from an iterator of batches."""
    return lambda: next(batches, None)
