"""Session recommendations: "because you just viewed X", from kNN neighbours at request time."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from recommend.algorithms.base import ItemSimilarity, Recommender
from recommend.algorithms.knn import ItemKNN, neighbour_scores

__all__ = ["Session", "session_rows"]


def session_rows(sequences: Sequence[Sequence[int]], n_items: int, *, last: int = 5,
                 decay: float = 0.5) -> sparse.csr_matrix:
    """One row per subject from their items in time order (oldest first).

    The latest item weighs 1, the one before ``decay``, then ``decay``**2 ...; only the
    ``last`` distinct items count, each at its most recent position.
    """
    if not 0 < decay <= 1:
        raise ValueError("decay must be in (0, 1]")
    rows, cols, weights = [], [], []
    for row, sequence in enumerate(sequences):
        recent: list[int] = []
        for item in reversed(list(sequence)):
            if item not in recent:
                recent.append(int(item))
                if len(recent) == last:
                    break
        rows += [row] * len(recent)
        cols += recent
        weights += [decay**age for age in range(len(recent))]
    if cols and (min(cols) < 0 or max(cols) >= n_items):
        raise IndexError(f"item indices must be in [0, {n_items})")
    return sparse.csr_matrix((np.array(weights, dtype=np.float32), (rows, cols)),
                             shape=(len(sequences), n_items))


class Session(ItemSimilarity, Recommender):
    """Neighbours of the items a subject just viewed, weighted by how recent each is.

    Rows come from ``session_rows``: nothing is learnt per subject, so a visitor the
    model has never seen is scored as soon as they view an item. The neighbours are an
    item-kNN's (``from_knn`` shares a fitted one's; ``fit`` trains its own).
    """

    name = "session"

    def __init__(self, k: int = 100, *, last: int = 5, decay: float = 0.5) -> None:
        self.k = k
        self.last = last
        self.decay = decay

    @classmethod
    def from_knn(cls, knn: ItemKNN, *, last: int = 5, decay: float = 0.5) -> "Session":
        """A session model sharing a fitted item-kNN's neighbours (no copy)."""
        knn._check_fitted()
        model = cls(knn.k, last=last, decay=decay)
        model.n_items_ = knn.n_items_
        model.similarity_ = knn.similarity_
        return model

    def _fit(self, interactions: sparse.csr_matrix, **extra: Any) -> None:
        self.similarity_ = ItemKNN(self.k).fit(interactions, **extra).similarity_

    def rows(self, sequences: Sequence[Sequence[int]]) -> sparse.csr_matrix:
        """``session_rows`` with this model's ``last`` and ``decay``."""
        self._check_fitted()
        return session_rows(sequences, self.n_items_, last=self.last, decay=self.decay)

    def because(self, user_row: sparse.spmatrix, item: int) -> int:
        """The item of the session that contributes most to ``item``'s score (-1 if none)."""
        row = self._user_rows(user_row)
        if row.shape[0] != 1:
            raise ValueError("because() takes one row")
        column = self.similarity_[row.indices, int(item)].toarray().ravel() * row.data
        return int(row.indices[np.argmax(column)]) if column.size and column.max() > 0 else -1

    def _scores(self, user_rows: sparse.csr_matrix) -> sparse.csr_matrix:
        return user_rows @ self.similarity_

    def _scores_one(self, items: np.ndarray, weights: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        return neighbour_scores(self.similarity_, items, weights.astype(np.float32))
