"""Model benchmark: quality on real data against popularity and the `implicit` library,
fit time, fit at RetailRocket's full scale, and serving latency.

    .venv/bin/pip install -e '.[bench]'      # implicit, a benchmark-only dependency
    .venv/bin/python bench/models.py [--repeat 3] [--skip-quality]

1. Quality, real data from ../shared/data (same protocol for every model, one run):
   MovieLens small, each user's last 10 % of ratings by time (rated = 1); the
   RetailRocket matrix, a random 20 % of each user's items held out (seed 42), 20,000
   test users. Popularity, our item-kNN, content, session and hybrid (blend weights
   tuned on a validation split inside the training data), implicit's
   CosineRecommender and BM25Recommender with K = 100.
2. Fit time on the RetailRocket training matrix: ours against implicit's kNN, medians.
3. Scale: GENERATED events of RetailRocket's full shape (bench/generate_events.py:
   2.76 M events, 1.4 M visitors, 235 k items). Each fit runs in a fresh process,
   which reports its wall time and peak RSS; implicit BM25 in the same run as baseline.
4. Serving: recommend() for one user with 50 history items over a 200,000-item
   catalog (random K = 100 neighbour lists), median of many calls; baselines: a plain
   scipy product + argpartition, and implicit's C++ scorer on the same matrix.

The machine is shared (2 cores): figures are medians and noisy. Writes
bench/results/models.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")

DATA = ROOT.parent / "shared" / "data"
MOVIELENS = DATA / "movielens-ml-latest-small"
RETAILROCKET = DATA / "retailrocket" / "interaction_matrix_DERIVED_by_GFurts.npz"
RESULTS = ROOT / "bench" / "results" / "models.json"
K_NEIGHBOURS = 100


def implicit_specs() -> list[Any]:
    """implicit's kNN models as evaluation specs (K = 100, its default weighting params)."""
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    from recommend.offline import ModelSpec

    def fit(model: Any, data: Any) -> None:
        model.fit(data.train, show_progress=False)

    def recommend(model: Any, data: Any, users: np.ndarray, n: int) -> np.ndarray:
        ids, _ = model.recommend(users, data.train[users], N=n)
        return np.asarray(ids, dtype=np.int32)

    return [ModelSpec("implicit_cosine", lambda: CosineRecommender(K=K_NEIGHBOURS), fit=fit,
                      recommend=recommend),
            ModelSpec("implicit_bm25", lambda: BM25Recommender(K=K_NEIGHBOURS), fit=fit,
                      recommend=recommend)]


# --- 1. quality ------------------------------------------------------------------------


def quality() -> list[dict[str, Any]]:
    import django

    django.setup()
    from recommend.datasets import dataset_read
    from recommend.offline import evaluation_run, report_table

    reports = []
    for fmt, path in (("movielens", MOVIELENS), ("npz", RETAILROCKET)):
        dataset = dataset_read(format=fmt, path=path)
        if fmt == "movielens":  # implicit feedback: a rating is an interaction, weight 1
            dataset.events.weights[:] = 1.0
        report = evaluation_run(dataset, seed=42, max_users=20_000, extra_specs=implicit_specs(),
                                progress=lambda message: print("  " + message, flush=True))
        print(report_table(report), flush=True)
        reports.append(report)
    return reports


# --- 2. fit time on the real matrix ---------------------------------------------------


def fit_times(repeat: int) -> dict[str, Any]:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    from recommend.algorithms import ItemKNN
    from recommend.evaluation import split_random_per_user

    train = split_random_per_user(sparse.load_npz(RETAILROCKET), fraction=0.2, seed=42).train
    fits = {"item_knn (ours)": lambda: ItemKNN(k=K_NEIGHBOURS).fit(train),
            "implicit_bm25": lambda: BM25Recommender(K=K_NEIGHBOURS).fit(
                train, show_progress=False),
            "implicit_cosine": lambda: CosineRecommender(K=K_NEIGHBOURS).fit(
                train, show_progress=False)}
    seconds: dict[str, list[float]] = {name: [] for name in fits}
    for _ in range(repeat):  # interleaved, so a busy moment hits every model alike
        for name, fit in fits.items():
            started = time.perf_counter()
            fit()
            seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"\nfit seconds on the RetailRocket training matrix {train.shape}, "
          f"{train.nnz:,} interactions (median of {repeat}):")
    for name, value in medians.items():
        print(f"  {name:<20} {value:7.3f} s   runs: {', '.join(f'{v:.3f}' for v in seconds[name])}")
    ratio = medians["item_knn (ours)"] / medians["implicit_bm25"]
    print(f"  ours / implicit_bm25 = {ratio:.2f}x (goal: <= 2x)")
    return {"medians": medians, "runs": seconds, "ours_over_implicit_bm25": ratio}


# --- 3. scale: generated full-size events, one process per fit -------------------------


def child_fit(which: str) -> None:
    """Run in a fresh process: fit on the generated events, print seconds and peak RSS."""
    from generate_events import load_or_generate, weighted_matrix

    matrix = weighted_matrix(load_or_generate())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if which == "ours":
        from recommend.algorithms import ItemKNN

        ItemKNN(k=K_NEIGHBOURS).fit(matrix)
    else:
        from implicit.nearest_neighbours import BM25Recommender

        BM25Recommender(K=K_NEIGHBOURS).fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak / 1024,
                      "rss_before_fit_mb": before / 1024, "shape": matrix.shape,
                      "nnz": int(matrix.nnz)}))


def scale(repeat: int) -> dict[str, Any]:
    from generate_events import load_or_generate

    arrays = load_or_generate()  # made once, kept under bench/results/
    print(f"\nscale: GENERATED events (not real data), {arrays['visitor'].size:,} events, "
          f"{np.unique(arrays['visitor']).size:,} visitors, {np.unique(arrays['item']).size:,} "
          "items; each fit in a fresh process:")
    results: dict[str, Any] = {}
    for which in ("ours", "implicit_bm25"):
        runs = []
        for _ in range(repeat):
            output = subprocess.run([sys.executable, __file__, "--child-fit", which],
                                    check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
        results[which] = {"seconds": statistics.median(r["seconds"] for r in runs),
                          "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                          "rss_before_fit_mb": runs[0]["rss_before_fit_mb"],
                          "pairs": runs[0]["nnz"], "runs": runs}
        print(f"  {which:<14} fit {results[which]['seconds']:6.2f} s, peak RSS of the process "
              f"{results[which]['peak_rss_mb']:,.0f} MB (median of {repeat}; the process held "
              f"{results[which]['rss_before_fit_mb']:,.0f} MB before fitting)")
    print("  goal: fit <= 60 s, peak memory <= 4,096 MB")
    return results


# --- 4. serving latency ----------------------------------------------------------------


def latency(n_items: int = 200_000, history: int = 50, calls: int = 3000) -> dict[str, Any]:
    from implicit.nearest_neighbours import ItemItemRecommender, NearestNeighboursScorer

    from recommend.algorithms import ItemKNN

    rng = np.random.default_rng(0)
    neighbours = rng.integers(0, n_items, n_items * K_NEIGHBOURS).astype(np.int32)
    similarity = sparse.csr_matrix(
        (rng.random(neighbours.size, dtype=np.float32), neighbours,
         np.arange(0, neighbours.size + 1, K_NEIGHBOURS)), shape=(n_items, n_items))
    similarity.sum_duplicates()
    model = ItemKNN(k=K_NEIGHBOURS)
    model.n_items_, model.similarity_ = n_items, similarity
    seen = np.sort(rng.choice(n_items, history, replace=False))
    row = sparse.csr_matrix((np.ones(history, dtype=np.float32), seen, [0, history]),
                            shape=(1, n_items))

    def plain_scipy() -> np.ndarray:
        scores = (row @ similarity).toarray().ravel()
        scores[seen] = 0
        top = np.argpartition(-scores, 20)[:20]
        return top[np.argsort(-scores[top])]

    baseline = ItemItemRecommender(K=K_NEIGHBOURS)
    baseline.similarity, baseline.scorer = similarity, NearestNeighboursScorer(similarity)
    ours_ids = model.recommend(row, 20)[0][0]
    assert set(ours_ids.tolist()) == set(plain_scipy().tolist()), "scorers disagree"
    results = {
        "ours recommend()": _median_ms(lambda: model.recommend(row, 20), calls),
        "plain scipy product + argpartition": _median_ms(plain_scipy, max(calls // 10, 50)),
        "implicit (C++ scorer)": _median_ms(lambda: baseline.recommend(0, row, N=20), calls),
    }
    print(f"\nserving: one user, {history} history items, {n_items:,} items, K = "
          f"{K_NEIGHBOURS} (random neighbour lists), n = 20, median per call:")
    for name, value in results.items():
        print(f"  {name:<36} {value:7.3f} ms")
    print("  goal: <= 1 ms")
    return results


def _median_ms(call: Any, calls: int) -> float:
    call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description="recsite model benchmark")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    parser.add_argument("--child-fit", choices=("ours", "implicit_bm25"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="implicit")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.child_fit:
        child_fit(args.child_fit)
        return
    try:
        import implicit
    except ImportError:
        sys.exit("bench/models.py compares with the implicit library: "
                 ".venv/bin/pip install -e '.[bench]'")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
          f"(shared with other work: figures are noisy); Python {platform.python_version()}, "
          f"numpy {np.__version__}, implicit {implicit.__version__}", flush=True)
    results: dict[str, Any] = {"quality": None if args.skip_quality else quality()}
    results["fit_time"] = fit_times(args.repeat)
    results["scale"] = scale(args.repeat)
    results["latency"] = latency()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
