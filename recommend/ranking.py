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
        similarity: np.ndarray | Callable[[int], Sequence[float]]
        ) -> list[tuple[str, float]]:
    """Maximal marginal relevance: greedily the item maximising
    (1 - diversity) * relevance - diversity * (its highest similarity to those chosen).

    Relevance is the score scaled to [0, 1] by the best; ``similarity`` holds the
    pairwise similarities of ``ranked`` (a square matrix), or gives row i of them (then
    only the rows of the chosen items are asked for); ``diversity`` 0 keeps the order.
    """
    if diversity <= 0 or len(ranked) <= 1:
        return list(ranked[:n])
    row_of = similarity if callable(similarity) else similarity.__getitem__
    # Plain Python: on the few dozen items of a pool it is faster than numpy's calls.
    best = max(score for _, score in ranked) or 1.0
    relevance = [(1 - diversity) * score / best for _, score in ranked]
    closest = [0.0] * len(ranked)
    marginal = list(relevance)  # relevance - diversity * closest, kept up to date
    free = list(range(len(ranked)))
    chosen: list[tuple[str, float]] = []
    while free and len(chosen) < n:
        # max keeps the first of equal values: ties go to the better ranked item
        pick = max(free, key=marginal.__getitem__)
        free.remove(pick)
        chosen.append(ranked[pick])
        if free and len(chosen) < n:
            row = row_of(pick)
            for i in free:
                if row[i] > closest[i]:
                    closest[i] = row[i]
                    marginal[i] = relevance[i] - diversity * row[i]
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
