"""Splits and ranking metrics against hand-computed answers."""

import math

import numpy as np
import pytest
from scipy import sparse

from recommend.evaluation import (
    Interactions,
    ranking_metrics,
    split_global_time,
    split_last_fraction_per_user,
    split_random_per_user,
)


def test_metrics_known_answer() -> None:
    # User 0 holds out {1, 2}; user 1 holds out {3}.
    test = sparse.csr_matrix((np.ones(3), ([0, 0, 1], [1, 2, 3])), shape=(2, 5))
    recommended = np.array([[1, 4, 2], [0, 4, -1]])
    m = ranking_metrics(recommended, test, np.array([0, 1]), k=2, n_items=5)
    assert m["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["ndcg@2"] == pytest.approx((1.0 / (1 + 1 / math.log2(3)) + 0) / 2)
    assert m["hitrate@2"] == pytest.approx(0.5)
    assert m["coverage@2"] == pytest.approx(3 / 5)  # items 0, 1, 4
    m3 = ranking_metrics(recommended, test, np.array([0, 1]), k=3, n_items=5)
    assert m3["recall@3"] == pytest.approx(0.5)
    assert m3["ndcg@3"] == pytest.approx(
        (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)) / 2)


def test_metrics_refuse_an_empty_user_set() -> None:
    with pytest.raises(ValueError, match="nothing to measure"):
        ranking_metrics(np.empty((0, 2), dtype=np.int32), sparse.csr_matrix((0, 3)),
                        np.empty(0, dtype=int), k=2, n_items=3)


def events(n_users: int = 30, per_user: int = 20, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    return Interactions(users=users, items=rng.integers(0, 50, users.size),
                        weights=np.ones(users.size, dtype=np.float32),
                        times=rng.uniform(0, 1e6, users.size), n_users=n_users, n_items=50)


def test_last_fraction_per_user_holds_out_each_users_latest_events() -> None:
    data = events()
    split = split_last_fraction_per_user(data, fraction=0.1)
    for user in range(data.n_users):
        mine = data.users == user
        times, items = data.times[mine], data.items[mine]
        latest = set(items[np.argsort(times)[-2:]].tolist())  # 10 % of 20
        earlier = set(items[np.argsort(times)[:-2]].tolist())
        assert set(split.test[user].indices.tolist()) == latest - earlier
        assert set(split.train[user].indices.tolist()) == earlier
    # Each pair's training time is its latest training event.
    user0 = (data.users == 0) & np.isin(data.items, split.train[0].indices)
    assert split.train_times is not None
    assert split.train_times[0].data.max() <= data.times[data.users == 0].max()
    assert split.train_times[0].data.max() == pytest.approx(
        np.sort(data.times[data.users == 0])[-3])
    assert user0.any()


def test_global_time_cut() -> None:
    data = events(seed=1)
    split = split_global_time(data, fraction=0.25)
    cut = np.quantile(data.times, 0.75)
    assert split.train.nnz and split.test.nnz
    late = data.times > cut
    assert split.train.sum() == pytest.approx(
        sparse.csr_matrix((np.ones((~late).sum()), (data.users[~late], data.items[~late])),
                          shape=(30, 50)).sum())


def test_random_per_user_is_seeded_and_holds_out_the_fraction() -> None:
    X = sparse.random(40, 100, density=0.1, format="csr", random_state=3, dtype=np.float32)
    X.data[:] = 1
    first = split_random_per_user(X, fraction=0.2, seed=42)
    again = split_random_per_user(X, fraction=0.2, seed=42)
    other = split_random_per_user(X, fraction=0.2, seed=43)
    assert (first.test != again.test).nnz == 0
    assert (first.test != other.test).nnz > 0
    counts = np.diff(X.indptr)
    held = np.diff(first.test.indptr)
    np.testing.assert_array_equal(held, np.where(counts >= 2,
                                                 np.maximum(1, np.round(counts * 0.2)), 0))
    assert (first.train + first.test != X).nnz == 0
    assert first.train.multiply(first.test).nnz == 0
