"""Re-ranking: rotation, MMR and the per-category cap, on lists with known answers."""

import numpy as np

from recommend.ranking import category_capped, mmr, rotated

RANKED = [("a1", 1.0), ("a2", 0.95), ("a3", 0.9), ("b1", 0.6), ("c1", 0.5)]
CATEGORY = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "c1": "c"}


def same_category() -> np.ndarray:
    names = [item for item, _ in RANKED]
    return np.array([[float(CATEGORY[x] == CATEGORY[y]) for y in names] for x in names])


def test_mmr_without_diversity_keeps_the_order():
    assert mmr(RANKED, 3, diversity=0.0, similarity=same_category()) == RANKED[:3]


def test_mmr_trades_relevance_for_variety():
    picked = [item for item, _ in mmr(RANKED, 3, diversity=0.5, similarity=same_category())]
    assert picked == ["a1", "b1", "c1"]
    # Little diversity: the second-best of category a still wins over b1.
    mild = [item for item, _ in mmr(RANKED, 3, diversity=0.1, similarity=same_category())]
    assert mild == ["a1", "a2", "a3"]


def mmr_reference(ranked, n, *, diversity, similarity):
    """MMR as first written, in numpy over the whole matrix."""
    scores = np.array([score for _, score in ranked], dtype=np.float64)
    relevance = (1 - diversity) * scores / (scores.max() or 1.0)
    closest, free, chosen = np.zeros(len(ranked)), np.ones(len(ranked), dtype=bool), []
    while free.any() and len(chosen) < n:
        pick = int(np.argmax(np.where(free, relevance - diversity * closest, -np.inf)))
        free[pick] = False
        chosen.append(ranked[pick])
        closest = np.maximum(closest, similarity[pick])
    return chosen


def test_mmr_equals_the_matrix_version_and_reads_only_the_chosen_rows():
    rng = np.random.default_rng(5)
    for trial in range(200):
        size = int(rng.integers(2, 25))
        scores = np.round(rng.random(size), 2)  # rounded: ties happen
        ranked = [(f"i{k}", float(s)) for k, s in enumerate(sorted(scores, reverse=True))]
        matrix = np.round(rng.random((size, size)), 1)
        diversity = float(rng.choice([0.1, 0.3, 0.5, 0.9]))
        n = int(rng.integers(1, size + 1))
        asked: list[int] = []

        def row(i: int, matrix=matrix, asked=asked) -> np.ndarray:
            asked.append(i)
            return matrix[i]

        expected = mmr_reference(ranked, n, diversity=diversity, similarity=matrix)
        assert mmr(ranked, n, diversity=diversity, similarity=matrix) == expected, trial
        chosen = mmr(ranked, n, diversity=diversity, similarity=row)
        assert chosen == expected, trial
        assert sorted(asked) == sorted({ranked.index(c) for c in chosen[:-1]}), trial


def test_category_cap_fills_from_the_rest_only_when_it_must():
    capped = category_capped(RANKED, 4, cap=1, category=CATEGORY.get)
    assert [item for item, _ in capped] == ["a1", "b1", "c1", "a2"]


def test_rotation_sinks_unclicked_impressions():
    scores = rotated(dict(RANKED), {"a1": 2}, rate=0.5)
    assert scores["a1"] == 0.25 and scores["a2"] == 0.95
    assert rotated(dict(RANKED), {"a1": 2}, rate=0.0) == dict(RANKED)
