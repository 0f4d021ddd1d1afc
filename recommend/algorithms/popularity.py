"""Popularity and trending: the same list for everyone, the fallback and the baseline."""

from typing import Any

import numpy as np
from scipy import sparse

from recommend.algorithms.base import Recommender, excluded_items, positive_int
from recommend.algorithms.weighting import time_decay

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Items by how many users interacted with them (or their summed weights).

    With ``half_life`` (seconds) and fit(..., times=...), it is *trending*: each
    interaction counts 0.5 ** (age / half_life), and those older than ``window``
    seconds (if given) not at all.
    """

    name = "popularity"

    def __init__(self, *, count: str = "users", half_life: float | None = None,
                 window: float | None = None) -> None:
        self.count = count
        self.half_life = half_life
        self.window = window

    def _fit(self, interactions: sparse.csr_matrix, *, times: sparse.spmatrix | None = None,
             **_: Any) -> None:
        if self.count not in ("users", "weight"):
            raise ValueError(f"count must be 'users' or 'weight', got {self.count!r}")
        matrix = interactions.copy()
        if self.count == "users":
            matrix.data[:] = 1.0
        if self.half_life is not None or self.window is not None:
            matrix = self._recent(matrix, times)
        self.scores_ = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
        self.ranking_ = np.lexsort((np.arange(self.scores_.size), -self.scores_)).astype(
            np.int32)

    def _recent(self, matrix: sparse.csr_matrix, times: sparse.spmatrix | None
                ) -> sparse.csr_matrix:
        if times is None:
            raise ValueError("trending (half_life or window) needs fit(..., times=...)")
        times = sparse.csr_matrix(times, dtype=np.float64)
        times.sort_indices()
        if self.half_life is not None:
            matrix = time_decay(matrix, times, half_life=self.half_life)
        if self.window is not None:
            recent = times.data >= times.data.max() - self.window
            matrix = matrix.copy()
            matrix.data = np.where(recent, matrix.data, 0.0).astype(np.float32)
        return matrix

    def recommend(self, user_rows: sparse.spmatrix, n: int = 20, *, exclude_seen: bool = True,
                  exclude: sparse.spmatrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The most popular items each user has not seen (one sorted list for all)."""
        rows = self._user_rows(user_rows)
        n = positive_int(n, "n")
        excluded = excluded_items(rows, exclude, exclude_seen=exclude_seen)
        ids = np.full((rows.shape[0], n), -1, dtype=np.int32)
        values = np.zeros((rows.shape[0], n), dtype=np.float32)
        positive = self.ranking_[self.scores_[self.ranking_] > 0]
        for row in range(rows.shape[0]):
            seen = ([] if excluded is None else
                    excluded.indices[excluded.indptr[row]:excluded.indptr[row + 1]])
            # The first n + |seen| items always hold n unseen ones (or all there are).
            head = positive[: n + len(seen)]
            if len(seen):
                head = head[~np.isin(head, seen)]
            ids[row, : min(n, head.size)] = head[:n]
            values[row, : min(n, head.size)] = self.scores_[head[:n]]
        return ids, values

    def _add_items(self, count: int, item_texts: Any) -> None:
        first = self.scores_.size
        self.scores_ = np.concatenate([self.scores_, np.zeros(count, dtype=np.float32)])
        self.ranking_ = np.concatenate([self.ranking_,
                                        np.arange(first, first + count, dtype=np.int32)])

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_, "ranking": self.ranking_}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.scores_ = arrays["scores"]
        self.ranking_ = arrays["ranking"]
