"""bench/run_all.py runs a benchmark as a process and collects its --json; sustained's helpers."""

import sys

from bench import run_all, sustained

SCRIPT = """
import argparse, json, sys
parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int)
parser.add_argument("--json")
args = parser.parse_args()
print("measuring", args.size)
if args.size < 0:
    sys.exit(3)
open(args.json, "w").write(json.dumps({"size": args.size, "figure": args.size * 2}))
"""


def benchmark(tmp_path, size: int) -> run_all.Benchmark:
    script = tmp_path / "tiny_bench.py"
    script.write_text(SCRIPT)
    return run_all.Benchmark("tiny", str(script), ("--size", str(size)), ("--size", "1"), 0.1,
                             "a benchmark of nothing")


def test_a_benchmark_runs_as_a_process_and_its_json_becomes_the_entry(tmp_path):
    entry = run_all.benchmark_run(benchmark(tmp_path, 21), outdir=tmp_path, quick=False)

    assert entry["status"] == "ok"
    assert entry["result"] == {"size": 21, "figure": 42}
    assert "measuring 21" in (tmp_path / entry["log"]).read_text()
    contention = entry["contention"]
    assert contention["machine_pct"] >= 0 and contention["others_pct"] >= 0
    assert len(contention["loadavg_end"]) == 3
    quick = run_all.benchmark_run(benchmark(tmp_path, 21), outdir=tmp_path, quick=True)
    assert quick["result"] == {"size": 1, "figure": 2}  # the quick arguments


def test_a_failed_benchmark_keeps_the_last_good_result_and_says_so(tmp_path):
    good = run_all.benchmark_run(benchmark(tmp_path, 5), outdir=tmp_path, quick=False)
    failed = run_all.benchmark_run(benchmark(tmp_path, -1), outdir=tmp_path, quick=False)

    assert failed["status"] == "failed" and failed["reason"] == "exit code 3"
    assert "measuring -1" in failed["log_tail"]
    merged = run_all.entry_merge(good, failed)
    assert merged["result"] == {"size": 5, "figure": 10}
    assert merged["last_attempt"]["status"] == "failed"
    assert run_all.entry_merge(None, failed) == failed


def test_a_benchmark_that_cannot_run_here_is_skipped_with_the_reason(tmp_path):
    bench = run_all.Benchmark("tiny", sys.executable, (), (), 0.1, "nothing",
                              missing=lambda: "no such tool")
    assert run_all.benchmark_run(bench, outdir=tmp_path, quick=False)["reason"] == "no such tool"


def test_the_sustained_load_runs_only_when_asked_for():
    default = [b.name for b in run_all.selected(run_all.parse_args([]))]
    assert "sustained" not in default and {"ingest", "models", "recommendations"} <= set(default)
    assert "sustained" in [b.name for b in run_all.selected(run_all.parse_args(["--sustained"]))]
    only = run_all.selected(run_all.parse_args(["--only", "profiles,sustained"]))
    assert [b.name for b in only] == ["profiles", "sustained"]


def test_quick_leaves_out_what_cannot_be_made_quick_unless_named():
    assert "instructions" in [b.name for b in run_all.selected(run_all.parse_args([]))]
    quick = [b.name for b in run_all.selected(run_all.parse_args(["--quick"]))]
    assert "instructions" not in quick and "ingest" in quick
    named = run_all.selected(run_all.parse_args(["--quick", "--only", "instructions"]))
    assert [b.name for b in named] == ["instructions"]


def test_latency_percentiles_of_windows_merged_by_their_requests():
    def window(ms: float, requests: int) -> list[tuple[float, float]]:
        values = ",".join(str(int(ms * 1000)) for _ in sustained.QUANTILES)
        return sustained.latency_sketch(values, requests)

    # 300 requests at 10 ms, then 100 at 40 ms: three quarters of the run at 10 ms.
    merged = window(10, 300) + window(40, 100)
    assert sustained.sketch_percentiles(merged, (0.5, 0.75, 0.76, 0.99)) == {
        "p50_ms": 10.0, "p75_ms": 10.0, "p76_ms": 40.0, "p99_ms": 40.0}
    # One window: its own percentiles at the grid's points.
    values = ",".join(str(int(q * 1000)) for q in sustained.QUANTILES)  # p(q) = q ms
    one = sustained.latency_sketch(values, 1000)
    assert sustained.sketch_percentiles(one, (0.5, 0.99, 0.999)) == {
        "p50_ms": 50.0, "p99_ms": 99.0, "p99.9_ms": 99.9}
    assert sustained.sketch_percentiles([], (0.5,)) == {"p50_ms": None}
    assert sustained.latency_sketch("", 0) == []


def test_lag_row_in_seconds():
    assert sustained.lag_of((3, [0.1, 0.25, 0.3004], 0.5)) == {
        "batches": 3, "p50_s": 0.1, "p95_s": 0.25, "p99_s": 0.3, "max_s": 0.5}
    assert sustained.lag_of((0, None, None))["p99_s"] is None
