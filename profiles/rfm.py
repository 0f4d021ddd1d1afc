"""RFM scores, named RFM segments and lifecycle stages: pure numpy, no ORM.

Scores are quintiles over a site's population. The four cut points of each
measure are computed on schedule (``cuts_compute``) and applied to any value in
between (``scores_compute``): a value above k of the cuts scores k + 1, so ties
at a cut fall to the lower score and a new value is scored at once against the
last population seen.

Recency is scored on the *time* of the last purchase (of the last event on a
site without purchases), not on a number of days: cut points stay valid as the
clock moves, and a recompute gives the same scores whenever it runs. Times are
integer microseconds since the epoch, as the database keeps them, so SQL and
Python compare exactly the same numbers.

Every function takes arrays, one element per profile: the incremental path
scores the few profiles of a batch with the same code as a full recompute.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

QUANTILES = (0.2, 0.4, 0.6, 0.8)
DAY_US = 86_400_000_000
NO_TIME = -1  # "never" for an optional time (no purchase yet)


class Mode(StrEnum):
    """What F and M measure: purchases and spend, or (no purchases on the site) activity."""

    PURCHASES = "purchases"  # R: last purchase, F: distinct purchases, M: net spend; buyers only
    ACTIVITY = "activity"  # R: last event, F: distinct active days, M: events; everyone


class Segment(StrEnum):
    CHAMPIONS = "Champions"
    LOYAL = "Loyal"
    POTENTIAL_LOYALIST = "Potential Loyalist"
    NEW = "New"
    PROMISING = "Promising"
    NEED_ATTENTION = "Need Attention"
    AT_RISK = "At Risk"
    CANT_LOSE = "Can't Lose Them"
    HIBERNATING = "Hibernating"
    LOST = "Lost"


class Stage(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    VIP = "vip"


@dataclass(frozen=True)
class Cuts:
    """One site's cut points: four per measure, ascending (empty: nobody to score yet)."""

    mode: Mode
    recency: tuple[int, ...] = ()  # microseconds since the epoch
    frequency: tuple[float, ...] = ()
    monetary: tuple[float, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"recency": list(self.recency), "frequency": list(self.frequency),
                "monetary": list(self.monetary)}

    @classmethod
    def from_json(cls, mode: str, data: dict[str, Any]) -> "Cuts | None":
        if not mode:
            return None
        return cls(Mode(mode), tuple(int(v) for v in data.get("recency", ())),
                   tuple(float(v) for v in data.get("frequency", ())),
                   tuple(float(v) for v in data.get("monetary", ())))


@dataclass(frozen=True)
class Population:
    """The raw measures of some profiles, one array element each."""

    first_seen: np.ndarray  # int64 microseconds
    last_seen: np.ndarray  # int64 microseconds
    last_purchase: np.ndarray  # int64 microseconds, NO_TIME without purchase
    purchases: np.ndarray
    active_days: np.ndarray
    monetary: np.ndarray  # float64
    events: np.ndarray

    @classmethod
    def of(cls, **columns: Any) -> "Population":
        kinds = {"first_seen": np.int64, "last_seen": np.int64, "last_purchase": np.int64,
                 "monetary": np.float64}
        return cls(**{name: np.asarray(values, dtype=kinds.get(name, np.int64))
                      for name, values in columns.items()})

    def mode(self) -> Mode:
        return Mode.PURCHASES if bool((self.purchases > 0).any()) else Mode.ACTIVITY

    def measures(self, mode: Mode) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(scored?, recency basis, frequency, monetary) under a mode."""
        if mode == Mode.PURCHASES:
            scored = (self.purchases > 0) & (self.last_purchase != NO_TIME)
            return (scored, self.last_purchase, self.purchases.astype(np.float64),
                    self.monetary)
        return (np.ones(len(self.last_seen), dtype=bool), self.last_seen,
                self.active_days.astype(np.float64), self.events.astype(np.float64))


def quintiles(values: np.ndarray) -> tuple[float, ...]:
    """The 20/40/60/80 % quantiles (linear interpolation); empty input gives none."""
    if values.size == 0:
        return ()
    return tuple(float(q) for q in np.quantile(values, QUANTILES))


def cuts_compute(population: Population) -> Cuts:
    """Cut points over the scored part of a site's whole population."""
    mode = population.mode()
    scored, basis, frequency, monetary = population.measures(mode)
    # Integer times: a time above floor(q) is above q, so the floor keeps every score.
    recency = tuple(int(np.floor(q)) for q in quintiles(basis[scored].astype(np.float64)))
    return Cuts(mode, recency, quintiles(frequency[scored]), quintiles(monetary[scored]))


def score(values: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """1..5: one plus how many cut points lie strictly below each value."""
    return 1 + np.searchsorted(np.asarray(cuts), values, side="left")


def fm_score(f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """F and M combined for the segment grid: their mean, halves rounded up."""
    return (f + m + 1) // 2


def _grid() -> np.ndarray:
    """Segment names by [R, FM] (index 0 unused): the usual R x FM grid, with "About to
    Sleep" folded into Need Attention and the weakest corner named Lost."""
    grid = np.full((6, 6), "", dtype=object)
    for r in range(1, 6):
        for fm in range(1, 6):
            grid[r, fm] = _segment(r, fm).value
    return grid


def _segment(r: int, fm: int) -> Segment:
    if r == 5:
        return Segment.NEW if fm == 1 else (
            Segment.POTENTIAL_LOYALIST if fm <= 3 else Segment.CHAMPIONS)
    if r == 4:
        return Segment.PROMISING if fm == 1 else (
            Segment.POTENTIAL_LOYALIST if fm <= 3 else Segment.LOYAL)
    if r == 3:
        return Segment.NEED_ATTENTION if fm <= 3 else Segment.LOYAL
    if fm == 5:
        return Segment.CANT_LOSE
    if fm >= 3:
        return Segment.AT_RISK
    return Segment.HIBERNATING if r == 2 else Segment.LOST


SEGMENT_GRID = _grid()


@dataclass(frozen=True)
class Scored:
    """Scores 1..5 (0: not scored), the named segment ('' if none) and the stage."""

    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segment: np.ndarray
    stage: np.ndarray


@dataclass(frozen=True)
class StageRules:
    new_days: int
    at_risk_days: int
    churn_days: int


def scores_compute(population: Population, cuts: Cuts | None, *, as_of: int,
                   rules: StageRules) -> Scored:
    """Scores, segments and lifecycle stages of these profiles at ``as_of`` (microseconds)."""
    n = len(population.last_seen)
    r = np.zeros(n, dtype=np.int64)
    f = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    if cuts is not None and cuts.recency:
        scored, basis, frequency, monetary = population.measures(cuts.mode)
        r = np.where(scored, score(basis, cuts.recency), 0)
        f = np.where(scored, score(frequency, cuts.frequency), 0)
        m = np.where(scored, score(monetary, cuts.monetary), 0)
    segment = SEGMENT_GRID[r, fm_score(f, m)]
    stage = stages_compute(population, m=m, f=f, as_of=as_of, rules=rules)
    return Scored(r, f, m, segment, stage)


def stages_compute(population: Population, *, m: np.ndarray, f: np.ndarray, as_of: int,
                   rules: StageRules) -> np.ndarray:
    """The lifecycle stage at ``as_of``: churned, at risk, VIP, new or active (first match)."""
    last, first = population.last_seen, population.first_seen
    return np.select(
        [last < as_of - rules.churn_days * DAY_US,
         last < as_of - rules.at_risk_days * DAY_US,
         (m == 5) & (f >= 4),
         first >= as_of - rules.new_days * DAY_US],
        [Stage.CHURNED.value, Stage.AT_RISK.value, Stage.VIP.value, Stage.NEW.value],
        default=Stage.ACTIVE.value,
    ).astype(object)
