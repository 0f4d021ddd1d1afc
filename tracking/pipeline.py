"""The cleaning rules, as pure functions over plain event dicts (no ORM).

The order is fixed: duplicates, bots by user agent, bots by rate, sessions,
noise. Each rule marks an event with the reason it is dropped, so every event
that goes in comes out either kept or counted once.
"""

import hashlib
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Events that say only "someone was here for a while": alone and short, they are noise.
ENGAGEMENT_ONLY = frozenset({"page_view", "user_engagement", "scroll"})


@dataclass(slots=True)
class Candidate:
    """One accepted event on its way to the Event table."""

    event: dict[str, Any]
    batch_id: int
    source: str
    ts: float
    subject: str
    drop: str | None = None
    session: str = ""


@dataclass(frozen=True, slots=True)
class PriorEvent:
    """An already stored event of a subject, seen for sessions and rates."""

    subject: str
    ts: float
    session: str


def mark_duplicates(candidates: list[Candidate], stored_ids: set[str]) -> None:
    """Drop events already stored, and repeats of an event_id within these candidates."""
    seen: set[str] = set()
    for cand in candidates:
        if cand.drop:
            continue
        event_id = cand.event["event_id"]
        if event_id in stored_ids or event_id in seen:
            cand.drop = "duplicate"
        seen.add(event_id)


def mark_rate_bots(candidates: list[Candidate], prior: Iterable[PriorEvent],
                   *, max_per_second: int) -> None:
    """Drop every browser event of a subject that sent more than max_per_second in a second."""
    times: dict[str, list[float]] = defaultdict(list)
    for cand in candidates:
        if not cand.drop and cand.source == "browser":
            times[cand.subject].append(cand.ts)
    if not times:
        return
    for event in prior:
        if event.subject in times:
            times[event.subject].append(event.ts)
    bots = {subject for subject, ts in times.items() if _max_in_window(ts, 1.0) > max_per_second}
    for cand in candidates:
        if not cand.drop and cand.source == "browser" and cand.subject in bots:
            cand.drop = "bot_rate"


def _max_in_window(times: list[float], width: float) -> int:
    """The most timestamps that fall within any window of ``width`` seconds."""
    times.sort()
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect_right(times, start + width - 1e-9, lo=i) - i)
    return best


def session_id(site_id: int, subject: str, start: float) -> str:
    """A deterministic session id, so a batch processed twice gets the same sessions."""
    raw = f"{site_id}:{subject}:{start:.6f}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def assign_sessions(candidates: list[Candidate], prior: Iterable[PriorEvent], *, site_id: int,
                    gap: float) -> None:
    """Set each kept event's session: a new one after ``gap`` seconds of inactivity.

    Stored events keep their sessions; a new event continues the session of the
    nearest earlier event of its subject when that one is close enough.
    """
    timeline: dict[str, list[tuple[float, int, Any]]] = defaultdict(list)
    for event in prior:
        timeline[event.subject].append((event.ts, 0, event))
    for order, cand in enumerate(candidates):
        if not cand.drop:
            timeline[cand.subject].append((cand.ts, 1 + order, cand))
    for subject, entries in timeline.items():
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        last_ts: float | None = None
        current = ""
        for ts, _, entry in entries:
            if isinstance(entry, PriorEvent):
                current, last_ts = entry.session, ts
                continue
            if last_ts is None or ts - last_ts > gap:
                current = session_id(site_id, subject, ts)
            entry.session = current
            last_ts = ts


def mark_noise(candidates: list[Candidate], prior: Iterable[PriorEvent], *,
               min_engaged_ms: int) -> None:
    """Drop an engagement-only event that is its session's only event and lasted under the bound.

    A session known only from this batch may still grow later; the rule drops an
    event only when it says itself (engaged_ms) that the visit was too short.
    """
    sizes: dict[str, int] = defaultdict(int)
    for event in prior:
        sizes[event.session] += 1
    for cand in candidates:
        if not cand.drop:
            sizes[cand.session] += 1
    for cand in candidates:
        if cand.drop or sizes[cand.session] != 1 or cand.event["name"] not in ENGAGEMENT_ONLY:
            continue
        engaged = cand.event["params"].get("engaged_ms")
        if engaged is not None and engaged < min_engaged_ms:
            cand.drop = "noise"
