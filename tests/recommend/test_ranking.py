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


def test_category_cap_fills_from_the_rest_only_when_it_must():
    capped = category_capped(RANKED, 4, cap=1, category=CATEGORY.get)
    assert [item for item, _ in capped] == ["a1", "b1", "c1", "a2"]


def test_rotation_sinks_unclicked_impressions():
    scores = rotated(dict(RANKED), {"a1": 2}, rate=0.5)
    assert scores["a1"] == 0.25 and scores["a2"] == 0.95
    assert rotated(dict(RANKED), {"a1": 2}, rate=0.0) == dict(RANKED)
