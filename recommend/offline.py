"""Offline evaluation runs: fit each model on a split, rank for held-out users, measure.

Used by ``manage.py evaluate`` / ``manage.py tune`` and the model benchmark; no database.
"""

import itertools
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from recommend.algorithms import ContentModel, Hybrid, ItemKNN, Popularity, Session
from recommend.algorithms.hybrid import DEFAULT_WEIGHTS
from recommend.algorithms.session import session_rows
from recommend.datasets import Dataset
from recommend.evaluation import (
    Interactions,
    Split,
    ranking_metrics,
    split_global_time,
    split_last_fraction_per_user,
    split_random_per_user,
)

PROTOCOLS = ("user-time", "global-time", "random")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class EvalInput:
    """What a model may read: training matrix, item texts, each pair's time, recent items."""

    train: sparse.csr_matrix
    item_texts: list[str] | None
    train_times: sparse.csr_matrix | None
    recent: sparse.csr_matrix | None  # session rows of every user (None without times)


@dataclass
class ModelSpec:
    """A model to evaluate: how to build, fit and ask it (adapters wrap other libraries)."""

    name: str
    build: Callable[[], Any]
    needs_texts: bool = False
    needs_times: bool = False
    fit: Callable[[Any, EvalInput], None] = field(
        default=lambda model, data: model.fit(data.train))
    recommend: Callable[[Any, EvalInput, np.ndarray, int], np.ndarray] = field(
        default=lambda model, data, users, n: model.recommend(data.train[users], n)[0])


def default_specs(*, hybrid_weights: Mapping[str, float] | None = None) -> list[ModelSpec]:
    """Popularity, item-kNN, content, session and hybrid with their default parameters."""
    return [
        ModelSpec("popularity", Popularity),
        ModelSpec("item_knn", ItemKNN),
        ModelSpec("content", ContentModel, needs_texts=True,
                  fit=lambda m, d: m.fit(d.train, item_texts=d.item_texts)),
        ModelSpec("session", Session, needs_times=True,
                  recommend=lambda m, d, users, n: m.recommend(
                      d.recent[users], n, exclude=d.train[users])[0]),
        ModelSpec("hybrid", lambda: Hybrid(weights=hybrid_weights),
                  fit=lambda m, d: m.fit(d.train, item_texts=d.item_texts),
                  recommend=lambda m, d, users, n: m.recommend(
                      d.train[users], n,
                      recent_rows=None if d.recent is None else d.recent[users])[0]),
    ]


def dataset_split(dataset: Dataset, *, protocol: str, fraction: float, seed: int) -> Split:
    """The train/test split of a data set under a protocol (see PROTOCOLS)."""
    events = dataset.events
    if protocol == "random":
        return split_random_per_user(events.matrix(), fraction=fraction, seed=seed)
    if events.times is None:
        raise ValueError(f"{dataset.name} has no timestamps: use the random protocol")
    if protocol == "user-time":
        return split_last_fraction_per_user(events, fraction=fraction)
    if protocol == "global-time":
        return split_global_time(events, fraction=fraction)
    raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def eval_input(dataset: Dataset, split: Split, *, session_last: int = 5) -> EvalInput:
    """The inputs models read for a split (session rows from each user's latest training items)."""
    recent = None
    if split.train_times is not None:
        recent = recent_rows(split.train, split.train_times, last=session_last)
    return EvalInput(train=split.train, item_texts=dataset.item_texts,
                     train_times=split.train_times, recent=recent)


def recent_rows(train: sparse.csr_matrix, times: sparse.csr_matrix, *,
                last: int) -> sparse.csr_matrix:
    """Session rows: each user's ``last`` latest training items, the latest weighing most."""
    sequences = []
    for user in range(train.shape[0]):
        start, stop = times.indptr[user], times.indptr[user + 1]
        order = np.argsort(times.data[start:stop], kind="stable")
        sequences.append(times.indices[start:stop][order][-last:])
    return session_rows(sequences, train.shape[1], last=last)


def test_users(split: Split, *, max_users: int | None, seed: int) -> np.ndarray:
    """Users with held-out items, a random sample of ``max_users`` of them if more."""
    users = split.test_users
    if max_users is not None and users.size > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return users


def model_evaluate(spec: ModelSpec, data: EvalInput, test: sparse.csr_matrix,
                   users: np.ndarray, *, ks: Iterable[int] = (10, 20),
                   batch: int = 2000) -> dict[str, Any]:
    """Fit one model (timed, peak traced memory) and measure its lists for ``users``."""
    ks = sorted(ks)
    model = spec.build()
    tracemalloc.start()
    started = time.perf_counter()
    spec.fit(model, data)
    fit_seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    started = time.perf_counter()
    ids = np.concatenate([spec.recommend(model, data, users[i:i + batch], ks[-1])
                          for i in range(0, users.size, batch)]) if users.size else \
        np.empty((0, ks[-1]), dtype=np.int32)
    recommend_seconds = time.perf_counter() - started
    metrics: dict[str, float] = {}
    for k in ks:
        metrics.update(ranking_metrics(ids, test, users, k=k, n_items=test.shape[1]))
    return {"model": spec.name, **metrics, "fit_seconds": round(fit_seconds, 3),
            "peak_memory_mb": round(peak / 2**20, 1),
            "recommend_ms_per_user": round(1000 * recommend_seconds / max(users.size, 1), 3)}


def evaluate(dataset: Dataset, split: Split, specs: list[ModelSpec], *, users: np.ndarray,
             ks: Iterable[int] = (10, 20), progress: Progress | None = None
             ) -> list[dict[str, Any]]:
    """Every applicable model's row of results (models needing absent inputs are skipped)."""
    data = eval_input(dataset, split)
    rows = []
    for spec in specs:
        if (spec.needs_texts and data.item_texts is None) or (
                spec.needs_times and data.train_times is None):
            if progress:
                progress(f"{spec.name}: skipped (the data set has no "
                         f"{'item texts' if spec.needs_texts else 'timestamps'})")
            continue
        if progress:
            progress(f"{spec.name}: fitting and ranking for {users.size} users ...")
        rows.append(model_evaluate(spec, data, split.test, users, ks=ks))
    return rows


# --- tuning the hybrid's weights on a validation split --------------------------------

# Weights relative to item-kNN's (1): scores are scaled per user, so these are shares.
WEIGHT_GRID = {"knn": (1.0,), "content": (0.0, 0.05, 0.1, 0.2, 0.4, 0.8),
               "popularity": (0.0, 0.02, 0.05, 0.1, 0.2), "session": (0.0, 0.5, 1.0, 2.0, 4.0)}


@dataclass(frozen=True)
class CandidateTable:
    """Every candidate (user, item) of the components, with each component's score scaled
    as ``blend`` scales it: trying a weighting is then one product and one partition."""

    names: list[str]
    items: np.ndarray  # item of each candidate
    values: np.ndarray  # candidates x components
    layout: np.ndarray  # users x most candidates of a user: candidate index, -1 pad

    @classmethod
    def of(cls, found: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> "CandidateTable":
        names = sorted(found)
        n_users = next(iter(found.values()))[0].shape[0]
        pairs = np.concatenate([
            np.stack([np.repeat(np.arange(n_users), found[name][0].shape[1]),
                      found[name][0].ravel()], axis=1) for name in names])
        pairs = pairs[pairs[:, 1] >= 0]
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        values = np.zeros((len(unique), len(names)))
        start = 0
        for column, name in enumerate(names):
            ids, scores = found[name]
            best = np.where(ids[:, :1] >= 0, scores[:, :1], 1.0)
            scaled = (scores / np.where(best > 0, best, 1.0))[ids >= 0]
            values[inverse.ravel()[start:start + scaled.size], column] = scaled
            start += scaled.size
        counts = np.bincount(unique[:, 0], minlength=n_users)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        layout = np.full((n_users, max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
        layout[unique[:, 0], np.arange(len(unique)) - starts[unique[:, 0]]] = np.arange(
            len(unique))
        return cls(names=names, items=unique[:, 1], values=values, layout=layout)

    def top_n(self, weights: Mapping[str, float], n: int) -> np.ndarray:
        """Each user's n best items under these weights: int32 ids, -1 pad."""
        blended = self.values @ np.array([weights.get(name, 0.0) for name in self.names])
        scores = np.where(self.layout >= 0, blended[self.layout], -np.inf)
        scores[scores <= 0] = -np.inf
        n_best = min(n, scores.shape[1])
        part = np.argpartition(-scores, n_best - 1, axis=1)[:, :n_best]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        chosen = np.take_along_axis(part, order, axis=1)
        ids = np.where(np.take_along_axis(part_scores, order, axis=1) > -np.inf,
                       self.items[np.take_along_axis(self.layout, chosen, axis=1)], -1)
        padded = np.full((scores.shape[0], n), -1, dtype=np.int32)
        padded[:, :n_best] = ids
        return padded


def validation_split(split: Split, *, protocol: str, fraction: float, seed: int) -> Split:
    """The same protocol applied inside the training data (never touches the test set)."""
    train = split.train
    if protocol == "random" or split.train_times is None:
        return split_random_per_user(train, fraction=fraction, seed=seed + 1)
    times = split.train_times
    coo, time_coo = train.tocoo(), times.tocoo()
    events = Interactions(users=coo.row.astype(np.int64), items=coo.col.astype(np.int64),
                          weights=coo.data, times=time_coo.data, n_users=train.shape[0],
                          n_items=train.shape[1])
    if protocol == "global-time":
        return split_global_time(events, fraction=fraction)
    return split_last_fraction_per_user(events, fraction=fraction)


def weights_tune(dataset: Dataset, validation: Split, *, users: np.ndarray, k: int = 20,
                 grid: Mapping[str, tuple[float, ...]] = WEIGHT_GRID,
                 progress: Progress | None = None) -> tuple[dict[str, float], float]:
    """The blend weights with the best NDCG@k on the validation split, and that NDCG.

    With no validation user (too little data), the default weights and a score of 0.
    """
    if users.size == 0:
        if progress:
            progress("no validation user has a new held-out item: default blend weights")
        return dict(DEFAULT_WEIGHTS), 0.0
    data = eval_input(dataset, validation)
    hybrid = Hybrid().fit(data.train, item_texts=data.item_texts)
    found = hybrid.component_candidates(
        data.train[users], recent_rows=None if data.recent is None else data.recent[users])
    names = [name for name in grid if name in found]
    table = CandidateTable.of({name: found[name] for name in names})
    best: tuple[float, dict[str, float]] = (-1.0, {})
    for values in itertools.product(*(grid[name] for name in names)):
        weights = dict(zip(names, values, strict=True))
        ids = table.top_n(weights, k)
        score = ranking_metrics(ids, validation.test, users, k=k,
                                n_items=data.train.shape[1])[f"ndcg@{k}"]
        if score > best[0]:
            best = (score, weights)
    if progress:
        progress(f"tuned on {users.size} validation users: {best[1]} (NDCG@{k} {best[0]:.4f})")
    return best[1], best[0]


# --- the whole run, as ``manage.py evaluate`` does it ----------------------------------

DEFAULT_FRACTION = {"movielens": 0.1}
DEFAULT_PROTOCOL = {"npz": "random"}


def evaluation_run(dataset: Dataset, *, protocol: str | None = None,
                   fraction: float | None = None, seed: int = 42,
                   max_users: int | None = 20_000, ks: Iterable[int] = (10, 20),
                   models: Iterable[str] | None = None, tune: bool = True,
                   extra_specs: Iterable[ModelSpec] = (),
                   progress: Progress | None = None) -> dict[str, Any]:
    """Split, (tune the hybrid on a validation split of the training data), fit, measure."""
    protocol = protocol or DEFAULT_PROTOCOL.get(dataset.name, "random" if
                                                dataset.events.times is None else "user-time")
    fraction = fraction if fraction is not None else DEFAULT_FRACTION.get(dataset.name, 0.2)
    split = dataset_split(dataset, protocol=protocol, fraction=fraction, seed=seed)
    users = test_users(split, max_users=max_users, seed=seed)
    if users.size == 0:
        raise ValueError(f"{split.description}: no user has a held-out item they did not "
                         "have in training; try a larger --fraction or more data")
    weights = None
    wanted = set(models) if models is not None else None
    if tune and (wanted is None or "hybrid" in wanted):
        validation = validation_split(split, protocol=protocol, fraction=fraction, seed=seed)
        weights, _ = weights_tune(
            dataset, validation, progress=progress,
            users=test_users(validation, max_users=min(max_users or 5000, 5000), seed=seed))
    specs = [spec for spec in [*default_specs(hybrid_weights=weights), *extra_specs]
             if wanted is None or spec.name in wanted]
    rows = evaluate(dataset, split, specs, users=users, ks=ks, progress=progress)
    return {
        "dataset": dataset.name, "protocol": split.description, "seed": seed,
        "n_users": split.train.shape[0], "n_items": split.train.shape[1],
        "train_interactions": int(split.train.nnz), "test_interactions": int(split.test.nnz),
        "test_users": int(users.size), "hybrid_weights": weights, "ks": sorted(ks),
        "models": rows,
    }


def report_table(report: Mapping[str, Any]) -> str:
    """The report's models as an aligned text table."""
    columns = [f"{metric}@{k}" for k in report["ks"]
               for metric in ("recall", "ndcg", "hitrate", "coverage")]
    header = f"{'model':<24}" + "".join(f"{c:>13}" for c in columns) + \
        f"{'fit s':>9}{'peak MB':>9}"
    lines = [f"{report['dataset']}: {report['protocol']}; {report['test_users']:,} test users, "
             f"{report['n_items']:,} items", header]
    for row in report["models"]:
        lines.append(f"{row['model']:<24}" + "".join(f"{row[c]:>13.4f}" for c in columns)
                     + f"{row['fit_seconds']:>9.2f}{row['peak_memory_mb']:>9.1f}")
    return "\n".join(lines)
