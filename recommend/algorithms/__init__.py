"""Numerical recommendation models: numpy/scipy/scikit-learn only, no Django.

Every model follows one interface (``base.Recommender``): ``fit(interactions)`` on a
users x items CSR of non-negative weights, ``recommend(user_rows, n)`` returning int32
item indices (-1 pad) and float32 scores, ``similar_items(items, n)``, and
``save`` / ``load`` to .npz files without pickle.
"""

from recommend.algorithms.base import NotFittedError, Recommender, load_model
from recommend.algorithms.content import ContentModel
from recommend.algorithms.hybrid import Hybrid, blend
from recommend.algorithms.knn import ItemKNN
from recommend.algorithms.popularity import Popularity
from recommend.algorithms.session import Session, session_rows

__all__ = [
    "ContentModel",
    "Hybrid",
    "ItemKNN",
    "NotFittedError",
    "Popularity",
    "Recommender",
    "Session",
    "blend",
    "load_model",
    "session_rows",
]
