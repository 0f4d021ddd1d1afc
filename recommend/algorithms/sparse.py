"""Sparse-matrix helpers shared by the models: input checks, top-n per row with padding."""

import numpy as np
from scipy import sparse

__all__ = ["as_interactions", "top_n_rows", "top_n_sparse_row"]


def as_interactions(matrix: object, *, name: str = "interactions",
                    n_items: int | None = None) -> sparse.csr_matrix:
    """``matrix`` as a float32 CSR users x items with no negative or non-finite weight."""
    if not sparse.issparse(matrix):
        raise TypeError(f"{name} must be a scipy.sparse matrix (users x items), "
                        f"got {type(matrix).__name__}")
    csr = sparse.csr_matrix(matrix, dtype=np.float32)
    if csr.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional")
    if n_items is not None and csr.shape[1] != n_items:
        raise ValueError(f"{name} has {csr.shape[1]} columns; the model was fitted on "
                         f"{n_items} items")
    if csr.nnz and (not np.isfinite(csr.data).all() or csr.data.min() < 0):
        raise ValueError(f"{name} must hold finite, non-negative weights")
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def top_n_rows(scores: sparse.csr_matrix, n: int,
               exclude: sparse.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``n`` best items, best first: int32 ids (-1 pad) and float32 scores (0 pad).

    Entries of ``exclude`` (same shape) are never returned; neither are non-positive scores.
    """
    scores = sparse.csr_matrix(scores, dtype=np.float32)
    if exclude is not None and exclude.nnz:
        scores = scores - scores.multiply(exclude.astype(bool))
    n_rows = scores.shape[0]
    ids = np.full((n_rows, n), -1, dtype=np.int32)
    values = np.zeros((n_rows, n), dtype=np.float32)
    for row in range(n_rows):
        start, stop = scores.indptr[row], scores.indptr[row + 1]
        row_ids, row_values = top_n_sparse_row(scores.indices[start:stop],
                                               scores.data[start:stop], n)
        ids[row, : row_ids.size] = row_ids
        values[row, : row_ids.size] = row_values
    return ids, values


def top_n_sparse_row(indices: np.ndarray, data: np.ndarray, n: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best positive (index, score) pairs of one sparse row, best first."""
    positive = data > 0
    if not positive.all():
        indices, data = indices[positive], data[positive]
    if data.size > n:
        part = np.argpartition(-data, n - 1)[:n]
        indices, data = indices[part], data[part]
    order = np.lexsort((indices, -data))  # ties: the lower index first, for stable output
    return indices[order].astype(np.int32), data[order].astype(np.float32)
