"""Item-item nearest neighbours on a weighted users x items matrix (BM25 by default)."""

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import sparse

from recommend.algorithms.base import ItemSimilarity, Recommender
from recommend.algorithms.sparse import as_interactions
from recommend.algorithms.weighting import (
    bm25_weight,
    drop_heavy_users,
    heavy_user_damping,
    tfidf_weight,
    time_decay,
)

__all__ = ["ItemKNN", "neighbour_scores", "neighbour_sums", "neighbours_top_k",
           "query_weights"]

WEIGHTINGS = ("bm25", "tfidf", "none")
QUERY_WEIGHTINGS = ("binary", "log", "raw")
HEAVY_USERS = ("drop", "damp")
# Rows up to this long are summed densely whatever the entries read: an array of a few
# thousand costs less than np.unique's sort and bookkeeping.
DENSE_WIDTH = 4096
FEW_ROWS = 6  # rows read by slicing each (a session, a content profile's latest items)

Progress = Callable[[int, int], None]


class ItemKNN(ItemSimilarity, Recommender):
    """Each item's ``k`` nearest items by the dot product of weighted item columns.

    The score of an item for a user is the sum, over the user's items, of the similarity
    from each of them to it, each weighted by ``query`` (binary, log1p of the weight, raw).
    BM25 (or TF-IDF) weighting gives every user an idf, so bot-like users with hundreds
    of items weigh little; users with more than ``max_user_items`` items are left out of
    the similarity (``heavy_users="drop"``) or scaled down (``"damp"``); ``shrinkage``
    pulls the similarity of pairs seen together by few users towards zero; ``half_life``
    (seconds) decays old interactions when fit() is given their ``times``.

    The defaults (k1 0.5, b 0.3, drop above 500 items) were chosen on validation splits
    inside the training data of MovieLens and RetailRocket, never on their test sets.
    """

    name = "item_knn"

    def __init__(self, k: int = 100, *, weighting: str = "bm25", k1: float = 0.5,
                 b: float = 0.3, max_user_items: int | None = 500, heavy_users: str = "drop",
                 shrinkage: float = 0.0, query: str = "binary", half_life: float | None = None,
                 block_nnz: int = 20_000_000) -> None:
        self.k = k
        self.weighting = weighting
        self.k1 = k1
        self.b = b
        self.max_user_items = max_user_items
        self.heavy_users = heavy_users
        self.shrinkage = shrinkage
        self.query = query
        self.half_life = half_life
        self.block_nnz = block_nnz

    def _fit(self, interactions: sparse.csr_matrix, *, times: sparse.spmatrix | None = None,
             progress: Progress | None = None, **_: Any) -> None:
        self._check_params()
        weighted = self.weighted(interactions, times=times)
        self.similarity_ = neighbours_top_k(weighted, k=self.k, shrinkage=self.shrinkage,
                                            block_nnz=self.block_nnz, progress=progress)

    def weighted(self, interactions: sparse.csr_matrix, *,
                 times: sparse.spmatrix | None = None) -> sparse.csr_matrix:
        """The matrix whose item columns are compared: decay, damping, then BM25 / TF-IDF."""
        matrix = interactions
        if self.half_life is not None:
            if times is None:
                raise ValueError("half_life needs fit(..., times=...) with each pair's time")
            matrix = time_decay(matrix, sparse.csr_matrix(times), half_life=self.half_life)
        if self.max_user_items is not None and self.heavy_users == "drop":
            matrix = drop_heavy_users(matrix, max_items=self.max_user_items)
        elif self.max_user_items is not None:
            matrix = heavy_user_damping(matrix, max_items=self.max_user_items)
        if self.weighting == "bm25":
            return bm25_weight(matrix, k1=self.k1, b=self.b)
        if self.weighting == "tfidf":
            return tfidf_weight(matrix)
        return matrix

    def _check_params(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.heavy_users not in HEAVY_USERS:
            raise ValueError(f"heavy_users must be one of {HEAVY_USERS}, "
                             f"got {self.heavy_users!r}")
        if self.query not in QUERY_WEIGHTINGS:
            raise ValueError(f"query must be one of {QUERY_WEIGHTINGS}, got {self.query!r}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.shrinkage < 0:
            raise ValueError("shrinkage must be >= 0")

    def _scores(self, user_rows: sparse.csr_matrix) -> sparse.csr_matrix:
        return query_weights(user_rows, self.query) @ self.similarity_

    def _scores_one(self, items: np.ndarray, weights: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        return neighbour_scores(self.similarity_, items,
                                query_weights_of(weights, self.query))


def query_weights(user_rows: sparse.csr_matrix, query: str) -> sparse.csr_matrix:
    """The user rows as the scoring reads them: binary, log1p of the weights, or raw."""
    weighted = user_rows.copy()
    weighted.data = query_weights_of(user_rows.data, query)
    return weighted


def query_weights_of(weights: np.ndarray, query: str) -> np.ndarray:
    """Weights as the scoring reads them (see ``query_weights``)."""
    if query == "binary":
        return np.ones_like(weights, dtype=np.float32)
    if query == "log":
        return np.log1p(weights).astype(np.float32)
    return weights.astype(np.float32)


def neighbour_scores(similarity: sparse.csr_matrix, items: np.ndarray, weights: np.ndarray,
                     *, dtype: type = np.float32, dense: bool | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sparse scores (candidate ids, ascending, and scores) of one user: the sum of the
    weighted rows ``items`` of ``similarity``.

    Plain numpy on the CSR arrays: for one user this is several times faster than a
    sparse product, whose setup touches an array as long as the catalog. ``dense`` sums
    into an array as long as a row (no sort: faster when the rows read hold many entries
    next to the row's length, or rows are short, as on small catalogs); None chooses by
    those sizes.
    """
    candidates, contributions = _row_entries(similarity, items, weights)
    if candidates.size == 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=dtype)
    width = similarity.shape[1]
    if dense if dense is not None else width <= max(20 * candidates.size, DENSE_WIDTH):
        summed = np.bincount(candidates, weights=contributions, minlength=width)
        ids = np.flatnonzero(summed)
        return ids.astype(np.int32), summed[ids].astype(dtype)
    unique, inverse = np.unique(candidates, return_inverse=True)
    return unique, np.bincount(inverse, weights=contributions).astype(dtype)


def neighbour_sums(similarity: sparse.csr_matrix, items: np.ndarray,
                   weights: np.ndarray) -> np.ndarray:
    """The scores of ``neighbour_scores`` as one float64 array as long as a row (0 where
    none): for small catalogs, whose dense arrays cost less than sparse bookkeeping."""
    candidates, contributions = _row_entries(similarity, items, weights)
    return np.bincount(candidates, weights=contributions, minlength=similarity.shape[1])


def _row_entries(similarity: sparse.csr_matrix, items: np.ndarray, weights: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The column indices and weighted values of the rows ``items`` of ``similarity``."""
    indptr = similarity.indptr
    if 0 < len(items) <= FEW_ROWS:  # slices: fewer numpy calls than the index arithmetic
        bounds = [(int(indptr[i]), int(indptr[i + 1])) for i in items]
        indices, data = similarity.indices, similarity.data
        return (np.concatenate([indices[a:b] for a, b in bounds]),
                np.concatenate([data[a:b] * w for (a, b), w in zip(bounds, weights,
                                                                   strict=True)]))
    starts = indptr[items]
    lengths = indptr[items + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
    positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
    return (similarity.indices[positions],
            similarity.data[positions] * np.repeat(weights, lengths))


def neighbours_top_k(weighted: sparse.csr_matrix, *, k: int, shrinkage: float = 0.0,
                     block_nnz: int = 20_000_000,
                     progress: Progress | None = None) -> sparse.csr_matrix:
    """Items x items CSR: each item's ``k`` largest dot products with other items.

    Computed for blocks of items whose product holds at most about ``block_nnz``
    entries, so memory stays bounded whatever the catalog; only the top ``k`` of each
    row are kept. ``shrinkage`` divides each similarity by (1 + shrinkage / co-users).
    """
    weighted = as_interactions(weighted, name="weighted")
    columns = weighted.T.tocsr()  # items x users
    co_users = None
    if shrinkage > 0:
        binary = weighted.copy()
        binary.data[:] = 1.0
        co_users = (binary, binary.T.tocsr())
    n_items = weighted.shape[1]
    parts = []
    done = 0
    for start, stop in item_blocks(weighted, block_nnz):
        product = (columns[start:stop] @ weighted).tocsr()
        if co_users is not None:
            counts = (co_users[1][start:stop] @ co_users[0]).tocsr()
            product = _shrunk(product, counts, shrinkage)
        parts.append(_top_k_rows(_without_self(product, start), k))
        done = stop
        if progress is not None:
            progress(done, n_items)
    if not parts:
        return sparse.csr_matrix((0, 0), dtype=np.float32)
    result = sparse.vstack(parts, format="csr")
    result.data = result.data.astype(np.float32)
    return result


def item_blocks(weighted: sparse.csr_matrix, block_nnz: int) -> Iterator[tuple[int, int]]:
    """Consecutive item ranges whose similarity rows hold about ``block_nnz`` entries at most.

    An item's row can have at most (sum over its users of their item counts) entries.
    """
    per_user = np.diff(weighted.indptr).astype(np.float64)
    binary = sparse.csr_matrix((np.ones(weighted.nnz), weighted.indices, weighted.indptr),
                               shape=weighted.shape)
    bound = np.minimum(binary.T @ per_user, weighted.shape[1])
    cumulative = np.cumsum(bound)
    start, n_items = 0, weighted.shape[1]
    while start < n_items:
        reached = cumulative[start - 1] if start else 0.0
        stop = int(np.searchsorted(cumulative, reached + block_nnz, side="right"))
        stop = min(max(stop, start + 1), n_items)
        yield start, stop
        start = stop


def _shrunk(product: sparse.csr_matrix, counts: sparse.csr_matrix,
            shrinkage: float) -> sparse.csr_matrix:
    """Each similarity times co_users / (co_users + shrinkage)."""
    counts.data = counts.data / (counts.data + shrinkage)
    return sparse.csr_matrix(product.multiply(counts))


def _without_self(product: sparse.csr_matrix, first_item: int) -> sparse.csr_matrix:
    """The block without each item's similarity to itself."""
    rows = np.repeat(np.arange(product.shape[0]), np.diff(product.indptr))
    product.data[product.indices == rows + first_item] = 0
    product.eliminate_zeros()
    return product


def _top_k_rows(block: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """The ``k`` largest entries of each row (entries must be positive)."""
    indptr, data = block.indptr, block.data
    lengths = np.diff(indptr)
    keep = np.ones(data.size, dtype=bool)
    for row in np.flatnonzero(lengths > k):
        start, stop = indptr[row], indptr[row + 1]
        dropped = np.argpartition(data[start:stop], stop - start - k)[: stop - start - k]
        keep[dropped + start] = False
    new_indptr = np.zeros_like(indptr)
    np.cumsum(np.minimum(lengths, k), out=new_indptr[1:])
    return sparse.csr_matrix((data[keep], block.indices[keep], new_indptr), shape=block.shape)
