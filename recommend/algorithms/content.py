"""Content model: TF-IDF over item texts; item neighbours and users' content profiles."""

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from recommend.algorithms.base import Recommender, csr_from_arrays, csr_to_arrays
from recommend.algorithms.knn import neighbour_scores, neighbour_sums, query_weights_of

__all__ = ["ContentModel"]


class ContentModel(Recommender):
    """Items as L2-normalised TF-IDF vectors of their text (title, description, category, tags).

    A user's profile is the weighted mean of their items' vectors; an item's score is
    its cosine with the profile, so items nobody has touched yet are recommendable.
    ``add_items`` vectorises new catalog items with the fitted vocabulary, no retraining.
    """

    name = "content"

    def __init__(self, *, min_df: int = 1, max_df: float = 0.5,
                 sublinear_tf: bool = True, ngram_max: int = 1,
                 max_features: int | None = 100_000, query: str = "log") -> None:
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.ngram_max = ngram_max
        self.max_features = max_features
        self.query = query

    def _fit(self, interactions: sparse.csr_matrix, *, item_texts: Any = None,
             **_: Any) -> None:
        texts = _texts(item_texts, self.n_items_)
        fitted = TfidfVectorizer(min_df=self.min_df, max_df=self.max_df,
                                 sublinear_tf=self.sublinear_tf, max_features=self.max_features,
                                 ngram_range=(1, self.ngram_max), dtype=np.float32)
        try:
            fitted.fit(texts)
        except ValueError:  # every text empty or every term filtered out
            fitted = TfidfVectorizer(dtype=np.float32, token_pattern=r"(?u)\S+").fit(["-"])
        self.vocabulary_ = fitted.get_feature_names_out().astype(str)
        self.idf_ = fitted.idf_.astype(np.float32)
        self._set_vectors(self.transform(texts))

    def transform(self, item_texts: Any) -> sparse.csr_matrix:
        """L2-normalised TF-IDF rows of these texts in the fitted vocabulary."""
        texts = _texts(item_texts, None)
        counter = CountVectorizer(vocabulary={term: i for i, term in enumerate(self.vocabulary_)},
                                  ngram_range=(1, self.ngram_max), dtype=np.float32)
        counts = counter.transform(texts).tocsr()
        if self.sublinear_tf:
            counts.data = 1.0 + np.log(counts.data)
        weighted = counts @ sparse.diags(self.idf_)
        return sparse.csr_matrix(normalize(weighted), dtype=np.float32)

    def _add_items(self, count: int, item_texts: Any) -> None:
        """New catalog items get vectors in the fitted vocabulary: recommendable at once."""
        vectors = self.transform(item_texts)
        self._set_vectors(sparse.vstack([self.item_vectors_, vectors], format="csr"))

    def _set_vectors(self, vectors: sparse.csr_matrix) -> None:
        self.item_vectors_ = vectors
        self.n_items_ = vectors.shape[0]
        self.term_items_ = vectors.T.tocsr()  # terms x items, for scoring profiles

    def _profiles(self, user_rows: sparse.csr_matrix) -> sparse.csr_matrix:
        rows = user_rows.copy()
        rows.data = query_weights_of(rows.data, self.query)
        return sparse.csr_matrix(normalize(rows, norm="l1") @ self.item_vectors_)

    def _scores(self, user_rows: sparse.csr_matrix) -> sparse.csr_matrix:
        return sparse.csr_matrix(self._profiles(user_rows) @ self.term_items_)

    def _scores_one(self, items: np.ndarray, weights: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        # The profile of _profiles for one row, and its scores, as sums of rows in numpy:
        # no sklearn validation and no sparse products (whose setup costs most here).
        return neighbour_scores(self.term_items_, *self._profile_one(items, weights))

    def scores_dense(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """One user's scores of every item (float64, 0 for none): ``_scores_one`` dense."""
        return neighbour_sums(self.term_items_, *self._profile_one(items, weights))

    def _profile_one(self, items: np.ndarray, weights: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The terms of one user's profile and their weights (see ``_profiles``): summed
        in plain Python, as a profile is a few items of a few terms each."""
        weights = query_weights_of(np.asarray(weights), self.query).astype(np.float64)
        scaled = (weights / (np.abs(weights).sum() or 1.0)).tolist()
        vectors = self.item_vectors_
        indptr, indices, data = vectors.indptr, vectors.indices, vectors.data
        profile: dict[int, float] = {}
        for item, weight in zip(np.asarray(items).tolist(), scaled, strict=True):
            start, stop = indptr[item], indptr[item + 1]
            for term, value in zip(indices[start:stop].tolist(), data[start:stop].tolist(),
                                   strict=True):
                profile[term] = profile.get(term, 0.0) + value * weight
        terms = sorted(profile)
        return (np.array(terms, dtype=np.int32),
                np.array([profile[term] for term in terms], dtype=np.float64))

    def _similar_scores(self, items: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.item_vectors_[items] @ self.term_items_)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"vocabulary": self.vocabulary_, "idf": self.idf_,
                **csr_to_arrays("vectors", self.item_vectors_)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.vocabulary_ = arrays["vocabulary"]
        self.idf_ = arrays["idf"]
        self._set_vectors(csr_from_arrays("vectors", arrays))


def _texts(item_texts: Any, n_items: int | None) -> list[str]:
    if item_texts is None or isinstance(item_texts, str):
        raise ValueError("item_texts must be a sequence of strings, one per item")
    texts = ["" if text is None else str(text) for text in item_texts]
    if n_items is not None and len(texts) != n_items:
        raise ValueError(f"item_texts has {len(texts)} texts; interactions have {n_items} items")
    return texts
