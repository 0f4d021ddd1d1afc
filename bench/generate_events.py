"""Generate a GENERATED (not real) event set of RetailRocket's full shape, for scale benchmarks.

RetailRocket's real events.csv: 2,756,101 events, 1,407,580 visitors, 235,061 items,
views 96.7 %, add-to-cart 2.5 %, transactions 0.8 %, 2015-05-03 .. 2015-09-18. This
makes synthetic events of that size and shape: every visitor has at least one event,
the rest go to a heavy tail of visitors (the busiest have thousands, like the real
bot-like ones), item popularity is long-tailed, and most of a visitor's events stay in
one category. It measures speed and memory only; quality is measured on real data.

    .venv/bin/python bench/generate_events.py [--out PATH] [--seed 42]
"""

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import sparse

N_EVENTS, N_VISITORS, N_ITEMS = 2_756_101, 1_407_580, 235_061
SHARES = {"view": 0.967, "addtocart": 0.025, "transaction": 0.008}
WEIGHTS = {"view": 1.0, "addtocart": 3.0, "transaction": 5.0}
START_MS, END_MS = 1430622000000, 1442545200000  # 2015-05-03 .. 2015-09-18
N_CATEGORIES = 1_669  # as many as RetailRocket's category tree
IN_CATEGORY = 0.7  # share of a visitor's events inside their main category
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "GENERATED_retailrocket_shape.npz"


def generate(seed: int = 42, *, n_events: int = N_EVENTS, n_visitors: int = N_VISITORS,
             n_items: int = N_ITEMS) -> dict[str, np.ndarray]:
    """Arrays visitor, item, event (0 view, 1 addtocart, 2 transaction), timestamp_ms."""
    rng = np.random.default_rng(seed)
    visitors = _visitors(rng, n_events, n_visitors)
    popularity = rng.permutation(np.arange(1, n_items + 1) ** -0.6)  # long tail, shuffled
    category_of_item = rng.integers(0, N_CATEGORIES, n_items)
    home = rng.choice(N_CATEGORIES, n_visitors, p=_category_shares(category_of_item, popularity))
    items = _items(rng, visitors, home, category_of_item, popularity)
    # Every item has at least one event, as in the real file.
    items[rng.choice(n_events, n_items, replace=False)] = np.arange(n_items)
    events = rng.choice(3, n_events, p=list(SHARES.values())).astype(np.int8)
    timestamps = rng.integers(START_MS, END_MS, n_events)
    return {"visitor": visitors.astype(np.int32), "item": items.astype(np.int32),
            "event": events, "timestamp_ms": timestamps,
            "GENERATED": np.array("synthetic events of RetailRocket's shape; not real data")}


def _visitors(rng: np.random.Generator, n_events: int, n_visitors: int) -> np.ndarray:
    """Every visitor once, the remaining events spread over a heavy tail of visitors."""
    activity = rng.permutation(np.arange(1, n_visitors + 1) ** -0.7)
    extra = rng.choice(n_visitors, n_events - n_visitors, p=activity / activity.sum())
    return np.concatenate([np.arange(n_visitors), extra])


def _category_shares(category_of_item: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    shares = np.bincount(category_of_item, weights=popularity, minlength=N_CATEGORIES)
    return shares / shares.sum()


def _items(rng: np.random.Generator, visitors: np.ndarray, home: np.ndarray,
           category_of_item: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Popularity-weighted items, from the visitor's home category or from anywhere."""
    order = np.argsort(category_of_item, kind="stable")
    cumulative = np.cumsum(popularity[order])
    per_category = np.bincount(category_of_item, weights=popularity, minlength=N_CATEGORIES)
    category_start = np.concatenate(([0.0], np.cumsum(per_category)[:-1]))
    n = visitors.size
    at_home = rng.random(n) < IN_CATEGORY
    category = home[visitors]
    # Inside the category: a uniform draw over its stretch of the cumulative weights.
    target = np.where(at_home,
                      category_start[category] + rng.random(n) * per_category[category],
                      rng.random(n) * cumulative[-1])
    position = np.minimum(np.searchsorted(cumulative, target, side="right"), order.size - 1)
    return order[position]


def weighted_matrix(arrays: dict[str, np.ndarray]) -> sparse.csr_matrix:
    """Visitors x items, view 1 + add-to-cart 3 + transaction 5 summed per pair."""
    weights = np.array(list(WEIGHTS.values()), dtype=np.float32)[arrays["event"]]
    shape = (int(arrays["visitor"].max()) + 1, int(arrays["item"].max()) + 1)
    matrix = sparse.csr_matrix((weights, (arrays["visitor"], arrays["item"])), shape=shape)
    matrix.sum_duplicates()
    return matrix


def load_or_generate(path: Path = DEFAULT_OUT, seed: int = 42) -> dict[str, np.ndarray]:
    """The generated arrays, made once and kept at ``path``."""
    if path.exists():
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    arrays = generate(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()
    arrays = generate(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    matrix = weighted_matrix(arrays)
    per_visitor = np.diff(matrix.indptr)
    print(f"GENERATED (not real) data written to {args.out} in "
          f"{time.perf_counter() - started:.1f} s: {arrays['visitor'].size:,} events, "
          f"{np.unique(arrays['visitor']).size:,} visitors, {np.unique(arrays['item']).size:,} "
          f"items; {matrix.nnz:,} visitor-item pairs; items per visitor max {per_visitor.max():,}"
          f", 99.9th percentile {np.percentile(per_visitor, 99.9):.0f}")


if __name__ == "__main__":
    main()
