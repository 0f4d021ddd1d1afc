"""Item-kNN against known answers and a brute-force computation on small matrices."""

import itertools
import math

import numpy as np
import pytest
from scipy import sparse

from recommend.algorithms import ItemKNN
from recommend.algorithms.knn import item_blocks, neighbours_top_k
from recommend.algorithms.weighting import bm25_weight, heavy_user_damping, time_decay

# 3 users x 4 items: items 0 and 1 are bought together twice, 1-2 and 2-3 once.
TINY = sparse.csr_matrix(np.array([[1, 1, 0, 0],
                                   [1, 1, 1, 0],
                                   [0, 0, 1, 1]], dtype=np.float32))


def test_tiny_matrix_known_similarities_and_scores() -> None:
    model = ItemKNN(k=10, weighting="none").fit(TINY)
    expected = np.array([[0, 2, 1, 0],
                         [2, 0, 1, 0],
                         [1, 1, 0, 1],
                         [0, 0, 1, 0]], dtype=np.float32)
    np.testing.assert_array_equal(model.similarity_.toarray(), expected)
    # A visitor who saw item 0: item 1 (2), then item 2 (1); item 3 has no link to item 0.
    ids, scores = model.recommend(sparse.csr_matrix([[1, 0, 0, 0]], dtype=np.float32), n=3)
    np.testing.assert_array_equal(ids, [[1, 2, -1]])
    np.testing.assert_array_equal(scores, [[2, 1, 0]])
    ids, _ = model.similar_items([3], n=2)
    np.testing.assert_array_equal(ids, [[2, -1]])


def brute_force_bm25(X: np.ndarray, k1: float, b: float) -> np.ndarray:
    """BM25 weights written out with loops, from the formula."""
    n_users, n_items = X.shape
    item_length = X.sum(axis=0)
    mean_length = item_length.mean()
    weighted = np.zeros_like(X, dtype=np.float64)
    for u in range(n_users):
        idf = max(0.0, math.log(n_items) - math.log(1 + np.count_nonzero(X[u])))
        for i in range(n_items):
            if X[u, i]:
                norm = (1 - b) + b * item_length[i] / mean_length
                weighted[u, i] = X[u, i] * (k1 + 1) / (k1 * norm + X[u, i]) * idf
    return weighted


def brute_force_top_k(weighted: np.ndarray, k: int) -> np.ndarray:
    """Every pair's dot product, the item itself left out, the k largest kept per row."""
    n_items = weighted.shape[1]
    similarity = np.zeros((n_items, n_items))
    for i in range(n_items):
        row = np.array([weighted[:, i] @ weighted[:, j] if j != i else 0.0
                        for j in range(n_items)])
        for j in np.argsort(-row, kind="stable")[:k]:
            if row[j] > 0:
                similarity[i, j] = row[j]
    return similarity


def random_matrix(seed: int, shape: tuple[int, int] = (40, 25)) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, shape) * (rng.random(shape) < 0.25)
    dense[0] = rng.integers(1, 3, shape[1])  # a bot-like user with every item
    return sparse.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bm25_item_knn_matches_brute_force(seed: int) -> None:
    X = random_matrix(seed)
    # Continuous weights make ties (and so the choice among equal neighbours) unlikely.
    X.data = X.data * np.random.default_rng(seed).uniform(0.9, 1.1, X.nnz).astype(np.float32)
    want_weights = brute_force_bm25(X.toarray(), k1=0.5, b=0.3)
    np.testing.assert_allclose(bm25_weight(X, k1=0.5, b=0.3).toarray(), want_weights, rtol=1e-5)
    # block_nnz=1 computes one item per block: blockwise must equal all at once.
    for block_nnz in (1, 10**9):
        model = ItemKNN(k=5, k1=0.5, b=0.3, block_nnz=block_nnz).fit(X)
        np.testing.assert_allclose(model.similarity_.toarray(),
                                   brute_force_top_k(want_weights, 5), rtol=1e-4, atol=1e-6)
        assert (np.diff(model.similarity_.indptr) <= 5).all()


def test_recommend_is_the_weighted_sum_of_neighbour_similarities() -> None:
    X = random_matrix(4)
    model = ItemKNN(k=8, query="log").fit(X)
    S = model.similarity_.toarray()
    user = X[5]
    want = np.log1p(user.toarray().ravel()) @ S
    want[user.indices] = 0
    ids, scores = model.recommend(user, n=5)
    np.testing.assert_allclose(scores[0], np.sort(want)[::-1][:5], rtol=1e-5)
    np.testing.assert_allclose(want[ids[0]], scores[0], rtol=1e-5)


def test_shrinkage_divides_by_one_plus_shrinkage_over_co_users() -> None:
    plain = ItemKNN(k=10, weighting="none").fit(TINY).similarity_.toarray()
    shrunk = ItemKNN(k=10, weighting="none", shrinkage=1.0).fit(TINY).similarity_.toarray()
    co_users = np.array([[0, 2, 1, 0], [2, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]])
    np.testing.assert_allclose(shrunk, plain * co_users / (co_users + 1.0))


def test_heavy_users_weigh_less() -> None:
    # Users 0-2 tie items 0 and 1 together; one bot touches items 2..9 (all pairs).
    rows = [0, 0, 1, 1, 2, 2] + [3] * 8
    cols = [0, 1, 0, 1, 0, 1, *range(2, 10)]
    X = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(4, 10))
    damped = heavy_user_damping(X, max_items=2)
    np.testing.assert_allclose(damped[3].data, math.sqrt(2 / 8))
    np.testing.assert_allclose(damped[:3].data, 1.0)
    S = ItemKNN(k=10, max_user_items=2, heavy_users="damp").fit(X).similarity_
    assert S[0, 1] > 3 * S[2, 3] > 0  # three real users beat one bot
    dropped = ItemKNN(k=10, max_user_items=2).fit(X)
    assert dropped.similarity_[0, 1] > 0 and dropped.similarity_[2:].nnz == 0
    ids, _ = dropped.recommend(
        sparse.csr_matrix(([1.0], ([0], [0])), shape=(1, 10)), n=1)
    assert ids[0, 0] == 1


def test_time_decay_halves_per_half_life() -> None:
    X = sparse.csr_matrix(np.array([[2, 4]], dtype=np.float32))
    times = sparse.csr_matrix(np.array([[1000.0, 1000.0 + 86400]]))
    decayed = time_decay(X, times, half_life=86400)
    np.testing.assert_allclose(decayed.toarray(), [[1.0, 4.0]])
    with pytest.raises(ValueError, match="sparsity"):
        time_decay(X, sparse.csr_matrix(np.array([[1.0, 0.0]])), half_life=1)
    with pytest.raises(ValueError, match="needs fit"):
        ItemKNN(half_life=10.0).fit(X)
    model = ItemKNN(half_life=86400.0, weighting="none").fit(
        sparse.csr_matrix(np.ones((2, 3), dtype=np.float32)),
        times=sparse.csr_matrix(np.array([[1.0, 86401, 86401], [86401, 86401, 86401]])))
    # Item 0 was seen a day early by user 0: its link to item 1 weighs 0.5 + 1, not 2.
    assert model.similarity_[0, 1] == pytest.approx(1.5)
    assert model.similarity_[1, 2] == pytest.approx(2.0)


def test_item_blocks_cover_every_item_once_within_the_bound() -> None:
    X = random_matrix(5, shape=(100, 60))
    blocks = list(item_blocks(X, block_nnz=200))
    assert blocks[0][0] == 0 and blocks[-1][1] == 60
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    assert len(blocks) > 1


def test_neighbours_of_an_empty_matrix_are_empty() -> None:
    empty = sparse.csr_matrix((5, 4), dtype=np.float32)
    assert neighbours_top_k(empty, k=3).nnz == 0
    ids, _ = ItemKNN().fit(empty).recommend(empty[:1], n=2)
    np.testing.assert_array_equal(ids, [[-1, -1]])
