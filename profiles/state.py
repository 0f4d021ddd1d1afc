"""A profile's running state and how events fold into it: pure Python, no ORM.

The incremental path (a batch of new events) and the full recompute (every
event of a site) both fold rows with ``ProfileState.add_rows`` and combine
profiles with ``ProfileState.merge``, so they agree by construction; the test
suite checks that they do on real data.

Distinct counts (sessions, active days, purchases) keep their members, so a
late or repeated event cannot be counted twice. Category affinity is a sum of
event weights decayed by ``2 ** (-age / half_life)``, held relative to the
profile's last event: adding an event or merging two profiles only rescales.
"""

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

DAY_US = 86_400_000_000
_NEVER_SEEN = 2**62  # sentinels of an empty state's first and last times
SESSION_KEY_CHARS = 12  # 48 bits of the session hash: no collision within one profile
PURCHASE = "purchase"
REFUND = "refund"
RATING = "rate_item"
# Exponent bound before affinity scores are rebased (float64 overflows past 2 ** 1023).
_REBASE_EXPONENT = 512.0


class EventRow(NamedTuple):
    """What profiles read of one Event row (one row per item of an event)."""

    owner: str  # the profile the row lands on (user, linked user, or the subject itself)
    subject: str
    user_subject: str | None
    session: str
    name: str
    item_id: str
    item_index: int
    ts: int  # microseconds since the epoch
    value: float | None
    engaged_ms: int | None
    device: str | None
    category: str | None
    purchase_key: str  # transaction id, or the event id without one


@dataclass(frozen=True)
class FoldRules:
    """How events weigh: affinity weights per event name and the decay half-life."""

    weights: dict[str, float]
    half_life_us: float

    def weight(self, name: str, value: float | None) -> float:
        if name == RATING:
            return max(value or 0.0, 0.0) / 2.5
        return self.weights.get(name, 0.0)


@dataclass(slots=True)
class ProfileState:
    subject: str
    identified: bool = False
    aliases: set[str] = field(default_factory=set)
    first_seen: int = _NEVER_SEEN  # times in microseconds since the epoch
    last_seen: int = -_NEVER_SEEN
    last_purchase: int | None = None
    events: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    days: set[int] = field(default_factory=set)
    purchases: set[str] = field(default_factory=set)
    monetary: float = 0.0
    engaged_ms: int = 0
    devices: dict[str, int] = field(default_factory=dict)
    # Category scores decayed to the time ``affinity_at``.
    affinity: dict[str, float] = field(default_factory=dict)
    affinity_at: int = 0

    # --- folding -----------------------------------------------------------

    def add_rows(self, rows: Iterable[EventRow], rules: FoldRules) -> None:
        """Fold these rows (all of this profile) into the state."""
        by_type, devices, affinity = self.by_type, self.devices, self.affinity
        half_life = rules.half_life_us
        for row in rows:
            ts = row.ts
            if ts < self.first_seen:
                self.first_seen = ts
            if ts > self.last_seen:
                self.last_seen = ts
            name = row.name
            if row.item_index == 0:
                self.events += 1
                by_type[name] = by_type.get(name, 0) + 1
                self.sessions.add(row.session[:SESSION_KEY_CHARS])
                self.days.add(ts // DAY_US)
                self.aliases.add(row.subject)
                if row.engaged_ms:
                    self.engaged_ms += row.engaged_ms
                if row.device:
                    devices[row.device] = devices.get(row.device, 0) + 1
                if row.user_subject == self.subject:
                    self.identified = True
            if name == PURCHASE:
                self.purchases.add(key_token(row.purchase_key))
                self.monetary += row.value or 0.0
                if self.last_purchase is None or ts > self.last_purchase:
                    self.last_purchase = ts
            elif name == REFUND:
                self.monetary -= row.value or 0.0
            if row.category:
                weight = rules.weight(name, row.value)
                if weight > 0.0:
                    exponent = (ts - self.affinity_at) / half_life
                    if exponent > _REBASE_EXPONENT:
                        self._rebase(ts, half_life)
                        exponent = 0.0
                    affinity[row.category] = (affinity.get(row.category, 0.0)
                                              + weight * math.exp2(exponent))

    def _rebase(self, at: int, half_life: float) -> None:
        factor = math.exp2((self.affinity_at - at) / half_life)
        for category in self.affinity:
            self.affinity[category] *= factor
        self.affinity_at = at

    def settle(self, rules: FoldRules) -> None:
        """Express affinity at the last event (the stored form); call before saving."""
        if self.events and self.affinity and self.affinity_at != self.last_seen:
            self._rebase(self.last_seen, rules.half_life_us)
        elif self.events:
            self.affinity_at = self.last_seen

    def merge(self, other: "ProfileState", rules: FoldRules) -> None:
        """Absorb another profile (an anonymous one whose visitor identified as this one)."""
        self.settle(rules)
        other.settle(rules)
        if other.events and other.last_seen > self.last_seen and self.affinity:
            self._rebase(other.last_seen, rules.half_life_us)
        if not self.affinity:
            self.affinity_at = max(self.affinity_at, other.affinity_at)
        factor = math.exp2((other.affinity_at - self.affinity_at) / rules.half_life_us)
        for category, value in other.affinity.items():
            self.affinity[category] = self.affinity.get(category, 0.0) + value * factor
        self.identified = self.identified or other.identified
        self.aliases |= other.aliases
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        if other.last_purchase is not None:
            self.last_purchase = max(self.last_purchase or other.last_purchase,
                                     other.last_purchase)
        self.events += other.events
        for name, n in other.by_type.items():
            self.by_type[name] = self.by_type.get(name, 0) + n
        for device, n in other.devices.items():
            self.devices[device] = self.devices.get(device, 0) + n
        self.sessions |= other.sessions
        self.days |= other.days
        self.purchases |= other.purchases
        self.monetary += other.monetary
        self.engaged_ms += other.engaged_ms
        self.settle(rules)

    # --- storage form ------------------------------------------------------

    def to_fields(self) -> dict[str, Any]:
        """Plain values for the Profile row (sets as sorted, space-separated text, the
        owner left out of its aliases); call ``settle`` first."""
        return {
            "subject": self.subject, "identified": self.identified,
            "aliases": " ".join(sorted(self.aliases - {self.subject})),
            "first_seen": self.first_seen, "last_seen": self.last_seen,
            "last_purchase": self.last_purchase, "events": self.events,
            "by_type": self.by_type, "session_keys": " ".join(sorted(self.sessions)),
            "sessions": len(self.sessions), "days": " ".join(map(str, sorted(self.days))),
            "active_days": len(self.days), "purchase_keys": " ".join(sorted(self.purchases)),
            "purchases": len(self.purchases), "monetary": self.monetary,
            "engaged_ms": self.engaged_ms, "devices": self.devices,
            "affinity": self.affinity,
        }

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> "ProfileState":
        """The state of a stored profile (the inverse of ``to_fields``)."""
        return cls(
            subject=values["subject"], identified=values["identified"],
            aliases=set(values["aliases"].split()) | {values["subject"]},
            first_seen=values["first_seen"],
            last_seen=values["last_seen"], last_purchase=values["last_purchase"],
            events=values["events"], by_type=dict(values["by_type"]),
            sessions=set(values["session_keys"].split()),
            days={int(day) for day in values["days"].split()},
            purchases=set(values["purchase_keys"].split()), monetary=values["monetary"],
            engaged_ms=values["engaged_ms"], devices=dict(values["devices"]),
            affinity=dict(values["affinity"]), affinity_at=values["last_seen"],
        )


def key_token(key: str) -> str:
    """A purchase key as stored: itself when short and without spaces, else a hash."""
    if 0 < len(key) <= 40 and not any(c.isspace() for c in key):
        return key
    return "#" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


def affinity_normalized(affinity: dict[str, float]) -> dict[str, float]:
    """Scores scaled to 0..1 by the largest, highest first."""
    top = max(affinity.values(), default=0.0)
    if top <= 0.0:
        return {}
    ranked = sorted(affinity.items(), key=lambda kv: (-kv[1], kv[0]))
    return {category: value / top for category, value in ranked}
