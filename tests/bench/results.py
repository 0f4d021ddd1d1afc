"""Benchmark results in the shapes the benchmarks write, with INVENTED figures.

For testing the report writer and the README regenerator only: none of these numbers
was measured, and none may be quoted.
"""

from typing import Any


def _phase(events: float, p50: float, p99: float, **extra: Any) -> dict[str, Any]:
    return {"events_per_s": events, "requests_per_s": round(events / 20), "p50_ms": p50,
            "p90_ms": (p50 + p99) / 2, "p99_ms": p99, "max_ms": p99 * 2, "non_2xx": 0,
            "socket_errors": 0, "cpu_pct": {"gunicorn": 120.0, "others": 7.0}, "runs": 3,
            "contended_runs": 0, **extra}


def ingest() -> dict[str, Any]:
    medians = {
        "hello": {**_phase(3111, 8.1, 17.2), "events_per_s": 3111, "requests_per_s": 3111},
        "A": _phase(12345, 41.5, 77.7),
        "P": _phase(11222, 60.5, 123.4),
        "naive": {**_phase(321, 90.0, 180.0), "requests_per_s": 321},
        "W": {"processed_per_s": 7777, "cpu_pct": {"worker": 60.0, "others": 3.0}, "runs": 3},
        "B": _phase(5432, 110.0, 210.0, processed_per_s=5400, backlog_start=0, backlog_end=100),
        "R": _phase(6543, 100.0, 199.9, processed_per_s=6500),
    }
    return {"machine": {"git": "abc1234 (working tree modified)"},
            "config": {"rate": 8000, "a_rate": 15000, "drain_batches": 2500, "no_consent": False,
                       "no_throttles": False},
            "medians": medians, "ratio": 38.5, "backlog_verdict": {"B": "steady", "R": "steady"},
            "targets": ["target A: >= 15,000 events/s with p99 <= 50 ms: 12,345 events/s, "
                        "p99 77.7 ms -> NOT met"]}


def instructions() -> dict[str, Any]:
    return {"small": 40, "large": 140, "valgrind": "valgrind-3.19.0",
            "cases": {"hello": {"per_request": 1_234_000.0},
                      "collect": {"per_request": 5_678_000.0},
                      "collect-bare": {"per_request": 4_321_000.0}}}


def pageload() -> dict[str, Any]:
    return {"chromium": "131.0", "runs": 15,
            "baselines": {"baseline, cold": "baseline, cold", "first visit": "baseline, cold",
                          "baseline, warm": "baseline, warm", "returning": "baseline, warm"},
            "medians": {"baseline, cold": {"load_ms": 90.0, "script_ms": 0.1, "task_ms": 5.0},
                        "first visit": {"load_ms": 211.5, "script_ms": 14.0, "task_ms": 30.0},
                        "baseline, warm": {"load_ms": 80.0, "script_ms": 0.1, "task_ms": 4.0},
                        "returning": {"load_ms": 140.0, "script_ms": 60.0, "task_ms": 70.0}}}


def _scores(recall: float, ndcg: float, fit: float) -> dict[str, float]:
    return {"recall@10": recall / 2, "ndcg@10": ndcg / 2, "recall@20": recall,
            "ndcg@20": ndcg, "fit_seconds": fit}


def models() -> dict[str, Any]:
    movielens = {"dataset": "movielens", "protocol": "each user's last 10% of events by time",
                 "test_users": 610, "n_users": 610, "n_items": 9742, "train_interactions": 90000,
                 "ks": [10, 20], "models": [
                     {"model": "popularity", **_scores(0.071, 0.052, 0.01)},
                     {"model": "item_knn", **_scores(0.121, 0.083, 0.6)},
                     {"model": "hybrid", **_scores(0.149, 0.111, 2.1)},
                     {"model": "implicit_bm25", **_scores(0.099, 0.071, 0.4)}]}
    matrix = {"dataset": "interaction_matrix_DERIVED_by_GFurts.npz",
              "protocol": "random 20% of each user's items (seed 42)", "test_users": 20000,
              "n_users": 80000, "n_items": 39000, "train_interactions": 348000, "ks": [10, 20],
              "models": [{"model": "popularity", **_scores(0.014, 0.006, 0.02)},
                         {"model": "item_knn", **_scores(0.395, 0.222, 0.8)}]}
    run = {"seconds": 7.0, "peak_rss_mb": 660.0, "rss_before_fit_mb": 410.0,
           "shape": [1400000, 235000], "nnz": 2600000}
    return {"quality": [movielens, matrix],
            "fit_time": {"medians": {"item_knn (ours)": 0.8, "implicit_bm25": 1.6,
                                     "implicit_cosine": 1.7}},
            "scale": {"ours": {**run, "pairs": 2600000, "runs": [run]},
                      "implicit_bm25": {**run, "seconds": 9.0, "peak_rss_mb": 1000.0,
                                        "pairs": 2600000, "runs": [run]}},
            "latency": {"ours recommend()": 0.45, "plain scipy product + argpartition": 1.5,
                        "implicit (C++ scorer)": 0.07}}


def profiles() -> dict[str, Any]:
    return {"data": {"GENERATED": True, "profiles": 1400000, "held_back": 20000},
            "recompute_seconds": [52.0, 53.0, 54.0], "recompute_median": 53.0,
            "sql_floor_median": 5.5, "recompute_events": 2736101,
            "incremental_us_per_event": [210.0, 220.0, 230.0], "incremental_median_us": 220.0,
            "naive_us_per_event": 3300.0, "kmeans_profiles": 100000,
            "kmeans_selection_median": 2.5, "kmeans_single_fit_median": 0.2}


def recommendations() -> dict[str, Any]:
    def phase(rate: float, p50: float, p99: float, gunicorn: float) -> dict[str, Any]:
        return {"requests_per_s": rate, "p50_ms": p50, "p99_ms": p99, "errors": 0,
                "cpu_ms_per_request": {"gunicorn": gunicorn, "postgres": 0.4,
                                       "redis-server": 0.05},
                "others_pct_of_a_core": 12.0}

    return {"phases": {"ceiling": phase(2200, 6.0, 18.0, 0.6),
                       "cached": phase(2100, 7.0, 19.5, 0.8),
                       "uncached": phase(550, 24.0, 61.0, 2.4),
                       "fresh": {"trials": 30, "p50_s": 0.031, "p95_s": 0.111, "max_s": 0.13}}}


def sustained() -> dict[str, Any]:
    points = [{"t_s": 30.0 * (i + 1), "accepted_events_per_s": 6000 + 10 * i,
               "processed_events_per_s": 5990 + 10 * i, "p50_ms": 100.0 + i,
               "p99_ms": 250.0 + i, "backlog_events": 100 * i,
               "lag": {"batches": 9000, "p50_s": 0.2, "p95_s": 0.5 + i / 10, "p99_s": 0.9}}
              for i in range(4)]
    return {"config": {"window": 30}, "load_seconds": 120.0, "windows": 4,
            "offered_events_per_s": 8000, "accepted_events_per_s": 6015,
            "processed_events_per_s": 6005, "non_2xx": 0, "socket_errors": 0,
            "latency": {"p50_ms": 101.5, "p90_ms": 180.0, "p99_ms": 251.5, "p99.9_ms": 400.1,
                        "window_p99_ms_min": 250.0, "window_p99_ms_max": 253.0},
            "lag": {"batches": 36000, "p50_s": 0.2, "p95_s": 0.65, "p99_s": 1.234,
                    "max_s": 3.5, "unprocessed_batches": 0},
            "drained_after_s": 0.4, "backlog_events_max": 300, "others_pct_of_a_core": 9.0,
            "points": points}


def fairness() -> dict[str, Any]:
    medians = {"alone_p50": 5.5, "alone_p99": 15.0, "beside_p50": 5.9, "beside_p99": 16.5,
               "calm_throttled": 0, "calm_requests": 512, "flood_429_share": 0.9,
               "flood_first_429_s": 0.12, "flood_max_per_window": 10, "flood_rate": 99.0}
    return {"config": {"quota_per_s": 10, "calm_sites": 4, "calm_rate_per_s": 32.0,
                       "flood_rate_per_s": 100, "gunicorn_workers": 4, "repeat": 3,
                       "seconds": 4.0, "phases": 4},
            "machine_busy_before_pct_of_a_core": 3.0, "runs": [medians], "medians": medians,
            "p99_ratio": 1.1, "target_ratio": 1.2}


ALL = {"ingest": ingest, "instructions": instructions, "pageload": pageload, "models": models,
       "profiles": profiles, "recommendations": recommendations, "fairness": fairness,
       "sustained": sustained}


def report(*, quick: bool = False, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A report.json as bench/run-all writes it, every entry ok."""
    names = only or tuple(ALL)
    return {"schema": 1, "updated_at": "2026-11-24T07:00:00Z", "quick": quick,
            "machine": {"nproc": 2, "cpu": "test CPU", "memory_gb": 4.0, "kernel": "6.1",
                        "python": "3.11.7"},
            "benchmarks": {name: {"status": "ok", "date": "2026-11-24T06:30:00Z",
                                  "commit": "abc1234", "dirty": False,
                                  "script": f"bench/{name}.py", "quick": quick,
                                  "contention": {"machine_pct": 150.0, "benchmark_pct": 140.0,
                                                 "others_pct": 10.0,
                                                 "loadavg_start": [1.0, 1.0, 1.0],
                                                 "loadavg_end": [2.0, 1.5, 1.0]},
                                  "result": ALL[name]()} for name in names}}
