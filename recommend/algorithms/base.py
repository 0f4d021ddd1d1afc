"""The model interface every recommender follows, and its save/load without pickle."""

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from scipy import sparse

from recommend.algorithms.sparse import as_interactions, top_n_rows, top_n_sparse_row

__all__ = ["NotFittedError", "Recommender", "load_model"]

FORMAT_VERSION = 1
_REGISTRY: dict[str, type["Recommender"]] = {}


class NotFittedError(RuntimeError):
    """The model was used before fit() or load()."""


class Recommender:
    """sklearn-style base: __init__ stores hyperparameters, fit() learns attributes ending in _.

    Subclasses implement ``_fit``, ``_scores`` (users x items CSR, higher is better) and
    ``_arrays`` / ``_restore`` for save/load; ``recommend`` and ``similar_items`` are shared.
    """

    name: ClassVar[str] = ""
    n_items_: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    # --- hyperparameters -----------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters given to __init__ (JSON-serialisable)."""
        return {key: value for key, value in vars(self).items()
                if not key.endswith("_") and not key.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # --- the interface ---------------------------------------------------------------

    def fit(self, interactions: sparse.spmatrix, **extra: Any) -> Self:
        """Learn from a users x items matrix of non-negative weights; returns self."""
        matrix = as_interactions(interactions)
        self.n_items_ = matrix.shape[1]
        self._fit(matrix, **extra)
        return self

    def recommend(self, user_rows: sparse.spmatrix, n: int = 20, *, exclude_seen: bool = True,
                  exclude: sparse.spmatrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The n best items for each row: int32 ids [users, n] (-1 pad), float32 scores.

        ``exclude`` (same shape as ``user_rows``) lists more items never to return.
        """
        rows = self._user_rows(user_rows)
        n = positive_int(n, "n")
        excluded = excluded_items(rows, exclude, exclude_seen=exclude_seen)
        if rows.shape[0] == 1 and hasattr(self, "_scores_one"):
            return self._recommend_one(rows, n, excluded)
        return top_n_rows(self._scores(rows), n, exclude=excluded)

    def _recommend_one(self, row: sparse.csr_matrix, n: int,
                       excluded: sparse.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """One user, without sparse-matrix products (the serving path)."""
        candidates, scores = self._scores_one(row.indices, row.data)
        seen = excluded.indices if excluded is not None else np.empty(0, dtype=np.int32)
        if seen.size:
            # Both are sorted: a candidate is seen where it matches the seen item at its place.
            at = np.minimum(np.searchsorted(seen, candidates), seen.size - 1)
            scores = np.where(seen[at] == candidates, 0.0, scores)
        ids = np.full((1, n), -1, dtype=np.int32)
        values = np.zeros((1, n), dtype=np.float32)
        best, best_scores = top_n_sparse_row(candidates, scores, n)
        ids[0, : best.size] = best
        values[0, : best.size] = best_scores
        return ids, values

    def similar_items(self, item_indices: Any, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """The n items most similar to each given item (never the item itself)."""
        items = self._item_indices(item_indices)
        rows = sparse.csr_matrix(
            (np.ones(items.size, dtype=np.float32), (np.arange(items.size), items)),
            shape=(items.size, self.n_items_))
        return top_n_rows(self._similar_scores(items), positive_int(n, "n"), exclude=rows)

    def add_items(self, item_texts: Any) -> np.ndarray:
        """Make room for new catalog items (their texts, one each); returns their indices.

        Behaviour-based models cannot score an item before retraining and only widen
        their matrices; the content model vectorises the texts and can recommend them.
        """
        self._check_fitted()
        if item_texts is None or isinstance(item_texts, str):
            raise ValueError("item_texts must be a sequence of strings, one per new item")
        texts = list(item_texts)
        first = self.n_items_
        self._add_items(len(texts), texts)
        self.n_items_ = first + len(texts)
        return np.arange(first, first + len(texts), dtype=np.int64)

    # --- hooks -------------------------------------------------------------------------

    def _add_items(self, count: int, item_texts: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot add items")

    def _fit(self, interactions: sparse.csr_matrix, **extra: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _fit")

    def _scores(self, user_rows: sparse.csr_matrix) -> sparse.csr_matrix:
        raise NotImplementedError(f"{type(self).__name__} must implement _scores")

    def _similar_scores(self, items: np.ndarray) -> sparse.csr_matrix:
        raise NotImplementedError(f"{type(self).__name__} has no item-item similarity")

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must implement _arrays")

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _restore")

    # --- persistence -----------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to an .npz file (no pickle); returns the path written."""
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        with path.open("wb") as handle:
            np.savez(handle, **model_arrays(self))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """A model saved by ``save``; the file's model type must be this class (or a base)."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # --- checks ----------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    def _user_rows(self, user_rows: sparse.spmatrix) -> sparse.csr_matrix:
        self._check_fitted()
        return as_interactions(user_rows, name="user_rows", n_items=self.n_items_)

    def _item_indices(self, item_indices: Any) -> np.ndarray:
        self._check_fitted()
        items = np.atleast_1d(np.asarray(item_indices))
        if items.ndim != 1 or (items.size and not np.issubdtype(items.dtype, np.integer)):
            raise TypeError("item_indices must be integers (one index or a 1-d array)")
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            raise IndexError(f"item indices must be in [0, {self.n_items_})")
        return items.astype(np.int64)


def load_model(path: str | Path) -> Recommender:
    """Any model saved by ``Recommender.save`` (its type is read from the file)."""
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a model file ({error})") from None
    return model_from_arrays(arrays)


def model_arrays(model: Recommender, prefix: str = "") -> dict[str, np.ndarray]:
    """A fitted model as named arrays (its header as a JSON string array), keys prefixed."""
    model._check_fitted()
    header = {"format": FORMAT_VERSION, "model": model.name, "params": model.get_params(),
              "n_items": model.n_items_}
    arrays = {"__header__": np.array(json.dumps(header)), **model._arrays()}
    return {prefix + key: value for key, value in arrays.items()}


def model_from_arrays(arrays: dict[str, np.ndarray], prefix: str = "") -> Recommender:
    """The model ``model_arrays`` wrote under ``prefix``."""
    own = {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}
    if "__header__" not in own:
        raise ValueError("not a model file: no header")
    header = json.loads(str(own.pop("__header__")))
    if header.get("format") != FORMAT_VERSION:
        raise ValueError(f"unknown model file format {header.get('format')!r}")
    cls = _REGISTRY.get(header.get("model", ""))
    if cls is None:
        raise ValueError(f"unknown model type {header.get('model')!r}")
    model = cls(**header["params"])
    model.n_items_ = int(header["n_items"])
    model._restore(own)
    return model


def excluded_items(rows: sparse.csr_matrix, exclude: sparse.spmatrix | None, *,
                   exclude_seen: bool) -> sparse.csr_matrix | None:
    """The items never to return per row: the rows' own (if exclude_seen) plus ``exclude``."""
    extra = None
    if exclude is not None:
        extra = as_interactions(exclude, name="exclude", n_items=rows.shape[1])
        if extra.shape[0] != rows.shape[0]:
            raise ValueError(f"exclude has {extra.shape[0]} rows; user_rows has {rows.shape[0]}")
    if not exclude_seen:
        return extra
    if extra is None:
        return rows
    combined = sparse.csr_matrix(rows.astype(bool) + extra.astype(bool), dtype=np.float32)
    combined.sort_indices()
    return combined


def csr_widened(matrix: sparse.csr_matrix, count: int, *, square: bool) -> sparse.csr_matrix:
    """``matrix`` with ``count`` empty columns (and rows too if ``square``) appended."""
    rows = matrix.shape[0] + (count if square else 0)
    indptr = np.concatenate([matrix.indptr, np.full(rows - matrix.shape[0], matrix.indptr[-1],
                                                    dtype=matrix.indptr.dtype)])
    return sparse.csr_matrix((matrix.data, matrix.indices, indptr),
                             shape=(rows, matrix.shape[1] + count))


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def csr_to_arrays(prefix: str, matrix: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays for np.savez."""
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices,
            f"{prefix}_indptr": matrix.indptr, f"{prefix}_shape": np.array(matrix.shape)}


def csr_from_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> sparse.csr_matrix:
    """The CSR matrix ``csr_to_arrays`` wrote."""
    return sparse.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=tuple(int(v) for v in arrays[f"{prefix}_shape"]))


class ItemSimilarity:
    """The artifact of a model that scores with one item x item matrix, ``similarity_``."""

    similarity_: sparse.csr_matrix

    def _similar_scores(self, items: np.ndarray) -> sparse.csr_matrix:
        return self.similarity_[items]

    def _add_items(self, count: int, item_texts: Any) -> None:
        self.similarity_ = csr_widened(self.similarity_, count, square=True)

    def _arrays(self) -> dict[str, np.ndarray]:
        return csr_to_arrays("similarity", self.similarity_)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.similarity_ = csr_from_arrays("similarity", arrays)
