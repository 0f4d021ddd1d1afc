"""Offline evaluation, pure numpy/scipy: train/test splits and top-k ranking metrics.

Protocol ("new items"): the ground truth of a user is the held-out items they did not
have in training; ranking is over all items except the user's training items.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recommend.algorithms.sparse import as_interactions

__all__ = [
    "Interactions",
    "Split",
    "latest_per_pair",
    "ranking_metrics",
    "split_global_time",
    "split_last_fraction_per_user",
    "split_random_per_user",
]


@dataclass(frozen=True)
class Interactions:
    """Events as parallel arrays (user index, item index, weight, time in seconds or None)."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    times: np.ndarray | None
    n_users: int
    n_items: int

    def matrix(self, mask: np.ndarray | None = None) -> sparse.csr_matrix:
        """The users x items matrix of these events (weights of repeated pairs summed)."""
        users, items, weights = self.users, self.items, self.weights
        if mask is not None:
            users, items, weights = users[mask], items[mask], weights[mask]
        return as_interactions(sparse.csr_matrix(
            (weights.astype(np.float32), (users, items)), shape=(self.n_users, self.n_items)))


@dataclass(frozen=True)
class Split:
    """Training matrix, held-out matrix (new items only) and each pair's last training time."""

    train: sparse.csr_matrix
    test: sparse.csr_matrix
    train_times: sparse.csr_matrix | None
    description: str

    @property
    def test_users(self) -> np.ndarray:
        """Users with at least one held-out item."""
        return np.flatnonzero(np.diff(self.test.indptr))


def split_last_fraction_per_user(events: Interactions, *, fraction: float) -> Split:
    """Each user's last ``fraction`` of events by time (at least one if they have two)."""
    if events.times is None:
        raise ValueError("a time-based split needs event times")
    order = np.lexsort((events.times, events.users))
    users = events.users[order]
    counts = np.bincount(users, minlength=events.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(users.size) - starts[users]
    n_test = np.where(counts >= 2, np.maximum(1, np.round(counts * fraction)), 0).astype(np.int64)
    in_test = np.empty(users.size, dtype=bool)
    in_test[order] = rank >= counts[users] - n_test[users]
    return _split(events, in_test, f"each user's last {fraction:.0%} of events by time")


def split_global_time(events: Interactions, *, fraction: float) -> Split:
    """Train on events before the time that leaves the last ``fraction`` of events after it."""
    if events.times is None:
        raise ValueError("a time-based split needs event times")
    cut = np.quantile(events.times, 1.0 - fraction)
    return _split(events, events.times > cut,
                  f"global time cut: the last {fraction:.0%} of events")


def split_random_per_user(matrix: sparse.csr_matrix, *, fraction: float, seed: int) -> Split:
    """A random ``fraction`` of each user's items held out (at least one if they have two)."""
    matrix = as_interactions(matrix)
    rng = np.random.default_rng(seed)
    counts = np.diff(matrix.indptr)
    users = np.repeat(np.arange(matrix.shape[0]), counts)
    keys = rng.random(users.size)
    order = np.lexsort((keys, users))
    rank = np.empty(users.size, dtype=np.int64)
    rank[order] = np.arange(users.size) - matrix.indptr[users[order]]
    n_test = np.where(counts >= 2, np.maximum(1, np.round(counts * fraction)), 0)
    in_test = rank < n_test[users]
    coo = matrix.tocoo()
    events = Interactions(users=coo.row, items=coo.col, weights=coo.data, times=None,
                          n_users=matrix.shape[0], n_items=matrix.shape[1])
    return _split(events, in_test, f"random {fraction:.0%} of each user's items (seed {seed})")


def _split(events: Interactions, in_test: np.ndarray, description: str) -> Split:
    train = events.matrix(~in_test)
    test = events.matrix(in_test)
    test = test - test.multiply(train.astype(bool))  # new items only
    test.eliminate_zeros()
    train_times = None
    if events.times is not None:
        keep = ~in_test
        train_times = latest_per_pair(events.users[keep], events.items[keep],
                                      events.times[keep], shape=train.shape)
    return Split(train=train, test=sparse.csr_matrix(test), train_times=train_times,
                 description=description)


def latest_per_pair(users: np.ndarray, items: np.ndarray, times: np.ndarray, *,
                    shape: tuple[int, int]) -> sparse.csr_matrix:
    """Users x items CSR of each pair's latest time (seconds)."""
    order = np.lexsort((-times, items, users))
    users, items, times = users[order], items[order], times[order].astype(np.float64)
    first = np.ones(users.size, dtype=bool)
    first[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    result = sparse.csr_matrix((times[first], (users[first], items[first])), shape=shape)
    result.sort_indices()
    return result


def ranking_metrics(recommended: np.ndarray, test: sparse.csr_matrix, users: np.ndarray,
                    *, k: int, n_items: int) -> dict[str, float]:
    """Recall@k, NDCG@k, HitRate@k and catalog coverage@k of ``recommended`` ids (-1 pad).

    Recall@k is hits / min(k, relevant), so a perfect list scores 1 whatever the
    number of held-out items; NDCG uses binary relevance; coverage is the share of the
    catalog that appears in at least one list.
    """
    if len(users) == 0:
        raise ValueError("no user has a held-out item new to them: nothing to measure")
    top = np.asarray(recommended[:, :k], dtype=np.int64)
    truth = sparse.csr_matrix(test[users])
    n_truth = np.diff(truth.indptr)
    if not n_truth.all():
        raise ValueError("every user measured must have at least one held-out item")
    # A hit is a (row, item) pair present in both: compare them as one int64 key each.
    truth_keys = np.repeat(np.arange(len(users), dtype=np.int64), n_truth) * n_items \
        + truth.indices
    top_keys = np.arange(len(users), dtype=np.int64)[:, None] * n_items + top
    hits = np.isin(top_keys, truth_keys) & (top >= 0)
    relevant = np.minimum(k, n_truth)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[relevant]
    recall = hits.sum(axis=1) / relevant
    ndcg = (hits * discounts[: top.shape[1]]).sum(axis=1) / ideal
    shown = np.unique(top[top >= 0])
    return {
        f"recall@{k}": float(recall.mean()),
        f"ndcg@{k}": float(ndcg.mean()),
        f"hitrate@{k}": float((recall > 0).mean()),
        f"coverage@{k}": float(shown.size / n_items),
    }
