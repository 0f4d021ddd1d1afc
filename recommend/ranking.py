"""Re-ranking of scored candidates: rotation, MMR diversity and a per-category cap.

Pure functions over (item id, score) lists; the serving service supplies categories
and item-item similarities.
"""

from collections.abc import Callable, Mapping, Sequence

import numpy as np


def rotated(scores: Mapping[str, float], unclicked: Mapping[str, int], *,
            rate: float) -> dict[str, float]:
    """Scores with each item's multiplied by (1 - rate) ** (its recent impressions without a
    click): items shown again and again and never clicked sink for a while."""
    if rate <= 0 or not unclicked:
        return dict(scores)
    keep = 1.0 - min(rate, 1.0)
    return {item: score * keep ** unclicked.get(item, 0) for item, score in scores.items()}


def mmr(ranked: Sequence[tuple[str, float]], n: int, *, diversity: float,
               similarity: np.ndarray) -> list[tuple[str, float]]:
    """Maximal marginal relevance: greedily the item maximising
    (1 - diversity) * relevance - diversity * (its highest similarity to those chosen).

    Relevance is the score scaled to [0, 1] by the best; ``similarity`` holds the
    pairwise similarities of ``ranked`` (a square matrix); ``diversity`` 0 keeps the order.
    """
    if diversity <= 0 or len(ranked) <= 1:
        return list(ranked[:n])
    scores = np.array([score for _, score in ranked], dtype=np.float64)
    relevance = (1 - diversity) * scores / (scores.max() or 1.0)
    closest = np.zeros(len(ranked))
    free = np.ones(len(ranked), dtype=bool)
    chosen: list[tuple[str, float]] = []
    while free.any() and len(chosen) < n:
        value = np.where(free, relevance - diversity * closest, -np.inf)
        pick = int(np.argmax(value))  # ties: the earlier (better ranked) one
        free[pick] = False
        chosen.append(ranked[pick])
        closest = np.maximum(closest, similarity[pick])
    return chosen


def category_capped(ranked: Sequence[tuple[str, float]], n: int, *, cap: int,
                    category: Callable[[str], str]) -> list[tuple[str, float]]:
    """The first n items in order, at most ``cap`` per category; when too few categories
    exist to fill n, the best of the items left out fill the rest."""
    counts: dict[str, int] = {}
    chosen, skipped = [], []
    for item, score in ranked:
        if len(chosen) == n:
            break
        key = category(item)
        if counts.get(key, 0) < max(cap, 1):
            counts[key] = counts.get(key, 0) + 1
            chosen.append((item, score))
        else:
            skipped.append((item, score))
    return chosen + skipped[: n - len(chosen)]
