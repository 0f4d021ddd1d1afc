"""Hybrid: blends the candidates of item-kNN, content, popularity (and session) per placement."""

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import sparse

from recommend.algorithms.base import (
    Recommender,
    excluded_items,
    model_arrays,
    model_from_arrays,
    positive_int,
)
from recommend.algorithms.content import ContentModel
from recommend.algorithms.knn import ItemKNN
from recommend.algorithms.popularity import Popularity
from recommend.algorithms.session import Session
from recommend.algorithms.sparse import top_n_rows

__all__ = ["DEFAULT_WEIGHTS", "Hybrid", "blend"]

DEFAULT_WEIGHTS = {"knn": 1.0, "content": 0.1, "popularity": 0.05, "session": 0.5}
COMPONENTS = ("knn", "content", "popularity", "session")


def blend(candidates: Mapping[str, tuple[np.ndarray, np.ndarray]],
          weights: Mapping[str, float], *, n_items: int) -> sparse.csr_matrix:
    """Users x items blended scores: sum over models of weight * score / the user's best.

    Each model's scores are scaled so its best candidate for a user scores 1; ids of
    -1 (padding) are ignored. Models missing from ``weights`` count 0.
    """
    total: sparse.csr_matrix | None = None
    for name, (ids, scores) in sorted(candidates.items()):  # one order: same sums
        weight = float(weights.get(name, 0.0))
        if weight == 0.0:
            continue
        best = np.where(ids[:, :1] >= 0, scores[:, :1], 1.0)
        scaled = np.where(ids >= 0, scores / np.where(best > 0, best, 1.0), 0.0) * weight
        rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
        keep = ids.ravel() >= 0
        part = sparse.csr_matrix((scaled.ravel()[keep], (rows[keep], ids.ravel()[keep])),
                                 shape=(ids.shape[0], n_items))
        total = part if total is None else total + part
    if total is None:
        first = next(iter(candidates.values()))[0]
        return sparse.csr_matrix((first.shape[0], n_items), dtype=np.float32)
    return sparse.csr_matrix(total, dtype=np.float32)


class Hybrid(Recommender):
    """Item-kNN, content (when item texts are given) and popularity, blended by weight.

    ``weights`` are the default blend; ``placements`` maps a placement name to its own
    weights (``manage.py tune`` picks them). Each model contributes its ``candidates``
    best items. With ``recent_rows`` (``session_rows``), session candidates join too.
    """

    name = "hybrid"

    def __init__(self, *, weights: Mapping[str, float] | None = None,
                 placements: Mapping[str, Mapping[str, float]] | None = None,
                 candidates: int = 200, knn: Mapping[str, Any] | None = None,
                 content: Mapping[str, Any] | None = None) -> None:
        self.weights = dict(weights if weights is not None else DEFAULT_WEIGHTS)
        self.placements = {name: dict(w) for name, w in (placements or {}).items()}
        self.candidates = candidates
        self.knn = dict(knn or {})
        self.content = dict(content or {})

    def _fit(self, interactions: sparse.csr_matrix, *, item_texts: Any = None,
             times: sparse.spmatrix | None = None, progress: Any = None, **_: Any) -> None:
        for weights in [self.weights, *self.placements.values()]:
            unknown = set(weights) - set(COMPONENTS)
            if unknown:
                raise ValueError(f"unknown blend components {sorted(unknown)}; use {COMPONENTS}")
        self.models_: dict[str, Recommender] = {
            "knn": ItemKNN(**self.knn).fit(interactions, times=times, progress=progress),
            "popularity": Popularity().fit(interactions),
        }
        if item_texts is not None:
            self.models_["content"] = ContentModel(**self.content).fit(
                interactions, item_texts=item_texts)

    def weights_for(self, placement: str | None) -> dict[str, float]:
        """The blend weights of a placement (the default ones for an unknown placement)."""
        return dict(self.placements.get(placement, self.weights) if placement else self.weights)

    def component_candidates(self, user_rows: sparse.spmatrix, *,
                             exclude: sparse.spmatrix | None = None,
                             recent_rows: sparse.spmatrix | None = None,
                             exclude_seen: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each component's best ``candidates`` (ids, scores) per user, seen items excluded."""
        rows = self._user_rows(user_rows)
        excluded = excluded_items(rows, exclude, exclude_seen=exclude_seen)
        found = {name: model.recommend(rows, self.candidates, exclude_seen=False,
                                       exclude=excluded)
                 for name, model in self.models_.items()}
        if recent_rows is not None:
            session = Session.from_knn(self.models_["knn"])  # type: ignore[arg-type]
            found["session"] = session.recommend(recent_rows, self.candidates,
                                                 exclude_seen=True, exclude=excluded)
        return found

    def recommend(self, user_rows: sparse.spmatrix, n: int = 20, *, exclude_seen: bool = True,
                  exclude: sparse.spmatrix | None = None, placement: str | None = None,
                  recent_rows: sparse.spmatrix | None = None,
                  weights: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The n best blended items per user (see ``blend``)."""
        n = positive_int(n, "n")
        found = self.component_candidates(user_rows, exclude=exclude, recent_rows=recent_rows,
                                          exclude_seen=exclude_seen)
        blended = blend(found, weights if weights is not None else self.weights_for(placement),
                        n_items=self.n_items_)
        return top_n_rows(blended, n)

    def _similar_scores(self, items: np.ndarray) -> sparse.csr_matrix:
        knn = self.models_["knn"]._similar_scores(items)
        if "content" not in self.models_:
            return knn
        # Items without behaviour yet have no kNN neighbours: their content neighbours serve.
        content = self.models_["content"]._similar_scores(items)
        weight = self.weights.get("content", 0.0)
        return sparse.csr_matrix(_row_max_scaled(knn) + weight * _row_max_scaled(content))

    def _add_items(self, count: int, item_texts: Any) -> None:
        texts = list(item_texts)
        for model in self.models_.values():
            model.add_items(texts)

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for name, model in self.models_.items():
            arrays.update(model_arrays(model, prefix=f"{name}/"))
        return arrays

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        names = sorted({key.split("/", 1)[0] for key in arrays if "/" in key})
        self.models_ = {name: model_from_arrays(arrays, prefix=f"{name}/") for name in names}


def _row_max_scaled(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Each row divided by its largest entry."""
    best = np.asarray(matrix.max(axis=1).todense()).ravel()
    return sparse.csr_matrix(sparse.diags(1.0 / np.where(best > 0, best, 1.0)) @ matrix)
