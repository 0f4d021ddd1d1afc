"""Behaviour clusters: features, K-Means with k chosen by silhouette, words for each cluster.

Pure numpy and scikit-learn: the service reads profiles into columns, this
module returns labels, centroids and descriptions.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import StandardScaler

AFFINITY_PREFIX = "affinity:"
BASE_FEATURES = ("events", "sessions", "active_days", "purchases", "monetary", "recency_days",
                 "engaged_seconds", "mobile_share", "cart_share", "rating_share")
_LOGGED = {"events", "sessions", "active_days", "purchases", "monetary", "recency_days",
           "engaged_seconds"}


@dataclass(frozen=True)
class Features:
    """One row per profile; counts are log1p'd so a few heavy users do not make the clusters."""

    matrix: np.ndarray
    names: tuple[str, ...]
    raw: np.ndarray  # the same columns before the log


def features_build(*, events: Sequence[int], sessions: Sequence[int],
                   active_days: Sequence[int], purchases: Sequence[int],
                   monetary: Sequence[float], recency_days: Sequence[float],
                   engaged_ms: Sequence[int], devices: Sequence[dict[str, int]],
                   by_type: Sequence[dict[str, int]], affinity: Sequence[dict[str, float]],
                   top_categories: int = 6) -> Features:
    """The behaviour features of profiles given as columns (affinities normalized 0..1)."""
    n = len(events)
    events_a = np.asarray(events, dtype=np.float64)
    sessions_a = np.asarray(sessions, dtype=np.float64)
    engaged = np.asarray(engaged_ms, dtype=np.float64) / 1000 / np.maximum(sessions_a, 1)
    device_total = np.array([sum(d.values()) for d in devices], dtype=np.float64)
    mobile = np.array([d.get("mobile", 0) + d.get("tablet", 0) for d in devices], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mobile_share = np.where(device_total > 0, mobile / device_total, np.nan)
    known = ~np.isnan(mobile_share)
    mobile_share[~known] = mobile_share[known].mean() if known.any() else 0.0
    carts = np.array([t.get("add_to_cart", 0) for t in by_type], dtype=np.float64)
    ratings = np.array([t.get("rate_item", 0) for t in by_type], dtype=np.float64)
    columns = [events_a, sessions_a, np.asarray(active_days, dtype=np.float64),
               np.asarray(purchases, dtype=np.float64),
               np.maximum(np.asarray(monetary, dtype=np.float64), 0.0),
               np.maximum(np.asarray(recency_days, dtype=np.float64), 0.0), engaged,
               mobile_share, carts / np.maximum(events_a, 1), ratings / np.maximum(events_a, 1)]
    names = list(BASE_FEATURES)
    popular = Counter(category for a in affinity for category in a)
    for category, _ in popular.most_common(top_categories):
        columns.append(np.array([a.get(category, 0.0) for a in affinity], dtype=np.float64))
        names.append(AFFINITY_PREFIX + category)
    raw = np.column_stack(columns) if n else np.zeros((0, len(names)))
    matrix = raw.copy()
    for index, name in enumerate(names):
        if name in _LOGGED:
            matrix[:, index] = np.log1p(matrix[:, index])
    return Features(matrix=matrix, names=tuple(names), raw=raw)


@dataclass(frozen=True)
class ClusterFit:
    k: int
    labels: np.ndarray  # one per row of the features
    centers_raw: np.ndarray  # k x features, mean of each cluster's raw features
    centers: np.ndarray  # k x features, mean of each cluster's (logged) feature rows
    centers_z: np.ndarray  # k x features, in standard units of the population
    silhouette: float  # mean silhouette on the sample, for the chosen k
    cluster_silhouette: np.ndarray  # mean silhouette of each cluster's sampled members
    sizes: np.ndarray
    silhouette_by_k: dict[int, float]


def kmeans_select(features: Features, *, k_range: tuple[int, int], fit_sample: int,
                  silhouette_sample: int, seed: int = 0) -> ClusterFit:
    """K-Means on standardized features for each k in range; the k with the best silhouette.

    Fits on at most ``fit_sample`` rows, then assigns every row; silhouette is
    computed on a fixed sample of ``silhouette_sample`` rows (it is quadratic).
    """
    n = len(features.matrix)
    low, high = k_range[0], min(k_range[1], n - 1)
    if n < 3 or high < max(low, 2):
        raise ValueError(f"{n} profiles are too few to cluster into {k_range[0]}.."
                         f"{k_range[1]} groups")
    rng = np.random.default_rng(seed)
    scaled = StandardScaler().fit_transform(features.matrix)
    fit_rows = rng.choice(n, fit_sample, replace=False) if n > fit_sample else np.arange(n)
    sample = rng.choice(n, silhouette_sample, replace=False) if n > silhouette_sample \
        else np.arange(n)
    best: tuple[float, int, KMeans, np.ndarray] | None = None
    by_k: dict[int, float] = {}
    for k in range(max(low, 2), high + 1):
        model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(scaled[fit_rows])
        sample_labels = model.predict(scaled[sample])
        if len(set(sample_labels.tolist())) < 2:
            by_k[k] = -1.0
            continue
        per_row = silhouette_samples(scaled[sample], sample_labels)
        by_k[k] = float(per_row.mean())
        if best is None or by_k[k] > best[0]:
            best = (by_k[k], k, model, per_row)
    if best is None:
        raise ValueError("every k put the sample in a single cluster")
    score, k, model, per_row = best
    labels = model.predict(scaled)
    sample_labels = labels[sample]
    sizes = np.bincount(labels, minlength=k)
    centers_raw = np.vstack([features.raw[labels == c].mean(axis=0) if sizes[c] else
                             np.zeros(features.raw.shape[1]) for c in range(k)])
    centers = np.vstack([features.matrix[labels == c].mean(axis=0) if sizes[c] else
                         np.zeros(features.matrix.shape[1]) for c in range(k)])
    centers_z = np.vstack([scaled[labels == c].mean(axis=0) if sizes[c] else
                           np.zeros(scaled.shape[1]) for c in range(k)])
    cluster_silhouette = np.array([per_row[sample_labels == c].mean()
                                   if (sample_labels == c).any() else np.nan for c in range(k)])
    return ClusterFit(k=k, labels=labels, centers_raw=centers_raw, centers=centers,
                      centers_z=centers_z,
                      silhouette=score, cluster_silhouette=cluster_silhouette, sizes=sizes,
                      silhouette_by_k=by_k)


def descriptions(fit: ClusterFit, names: Sequence[str]) -> list[str]:
    """Each cluster of a fit on behaviour features in words, made unique."""
    return _unique([describe(fit.centers_raw[c], fit.centers_z[c], names)
                    for c in range(fit.k)])


def describe(center_raw: np.ndarray, center_z: np.ndarray, names: Sequence[str]) -> str:
    """A cluster in words from its centroid, e.g. "frequent recent mobile buyers of lamps"."""
    raw = dict(zip(names, center_raw, strict=True))
    z = dict(zip(names, center_z, strict=True))
    words = []
    if max(z["sessions"], z["active_days"]) > 0.5:
        words.append("frequent")
    elif max(z["sessions"], z["active_days"]) < -0.5:
        words.append("occasional")
    if z["recency_days"] > 0.5:
        words.append("lapsed")
    elif z["recency_days"] < -0.5:
        words.append("recent")
    if z["monetary"] > 1.0 and raw["monetary"] > 0:
        words.append("big-spending")
    if z["mobile_share"] > 0.5 or (raw["mobile_share"] >= 0.6 and z["mobile_share"] > 0):
        words.append("mobile")
    elif z["mobile_share"] < -0.5:
        words.append("desktop")
    if raw["purchases"] >= 0.5:
        words.append("buyers")
    elif raw["rating_share"] >= 0.5:
        words.append("raters")
    elif z["cart_share"] > 0.5:
        words.append("cart fillers")
    else:
        words.append("browsers")
    categories = [(raw[name], name.removeprefix(AFFINITY_PREFIX)) for name in names
                  if name.startswith(AFFINITY_PREFIX)]
    if categories:
        value, category = max(categories)
        if value >= 0.4:
            words.append(f"of {category}")
    return " ".join(words)


def _unique(descriptions: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    unique = []
    for text in descriptions:
        seen[text] += 1
        unique.append(text if seen[text] == 1 else f"{text} ({seen[text]})")
    return unique
