"""Run every benchmark, collect their figures into one report, regenerate the README's figures.

    bench/run-all [--quick] [--only NAME,...] [--sustained [--minutes 15]] [--no-readme]

Each benchmark runs as its own process with its own arguments and writes its figures
with ``--json``; its output is shown and kept in ``logs/NAME.log``. Per benchmark the
report records the date, the commit, the wall time and how much CPU other processes
took meanwhile. bench/results/report.json keeps the latest result of every benchmark
(a run of some of them updates theirs); report.md and the plots are written beside it
and the README's marked figure tables are replaced (bench/report.py). ``--quick`` runs
small sizes to check the plumbing in minutes and writes to bench/results/quick/, never
to the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report as report_writer  # noqa: E402
from bench.ingest import machine_busy  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"


def _missing_command(command: str, package: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if shutil.which(command):
            return None
        return f"{command} not installed (apt-get install -y {package})"

    return check


def _models_missing() -> str | None:
    if not SHARED_DATA.is_dir():
        return f"the real data sets are not here ({SHARED_DATA} is missing)"
    if util.find_spec("implicit") is None:
        return "the implicit library is missing: .venv/bin/pip install -e '.[bench]'"
    return None


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    minutes: float  # about, full run, on the 2-core machine
    what: str
    missing: Callable[[], str | None] = lambda: None
    optional: bool = False  # only when asked for (--sustained, or --only)
    slow_quick: bool = False  # left out of --quick unless named in --only


BENCHMARKS = [
    Benchmark("ingest", "bench/ingest.py", (),
              ("--seconds", "3", "--repeat", "1", "--hello-seconds", "2", "--warmup", "1",
               "--drain-batches", "200", "--subjects", "2000", "--quiet-wait", "0",
               "--time-budget", "0"),
              8, "collect events/s and latency, worker, naive baseline, end to end"),
    # valgrind's start-up of Python and Django dominates however few requests are counted
    # (some 8 minutes beside other work), so --quick leaves it out.
    Benchmark("instructions", "bench/collect_instructions.py", (),
              ("--small", "2", "--large", "4", "--cases", "hello"),
              10, "instructions per collect request (callgrind)",
              missing=_missing_command("valgrind", "valgrind"), slow_quick=True),
    Benchmark("pageload", "bench/tracker_pageload.py", (), ("--runs", "2"),
              2, "what the tracker and banner add to a page load (Chromium)"),
    Benchmark("models", "bench/models.py", (), ("--repeat", "1"),
              4, "quality against popularity and implicit on real data, fit time, latency",
              missing=_models_missing),
    Benchmark("profiles", "bench/bench_profiles.py", (),
              ("--repeat", "1", "--events", "60000", "--profiles", "5000"),
              10, "profile recompute, incremental update, K-Means (GENERATED events)"),
    Benchmark("recommendations", "bench/recommendations.py", (),
              ("--seconds", "3", "--repeat", "1", "--subjects", "200", "--trials", "3"),
              4, "serving req/s and latency against a Redis-GET ceiling, freshness"),
    Benchmark("fairness", "bench/rate_limit_fairness.py", (),
              ("--repeat", "1", "--seconds", "2", "--phases", "2"),
              3, "calm sites' collect latency beside one key flooding at 10x its quota"),
    Benchmark("sustained", "bench/sustained.py", (),
              ("--minutes", "0.5", "--window", "10", "--subjects", "2000", "--warmup", "2"),
              17, "collect + worker at 8,000 events/s for 15 minutes: latency and lag",
              optional=True),
]


# --- machine and commit -------------------------------------------------------------


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip()


def commit_info() -> dict[str, Any]:
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine() -> dict[str, Any]:
    """The machine and the versions that matter to the figures."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    versions = {}
    for package in ("django", "djangorestframework", "celery", "gunicorn", "psycopg", "numpy",
                    "scipy", "scikit-learn", "implicit", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gb": round(mem_kb / 1024 ** 2, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "hostname": platform.node(), "versions": versions}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- running one benchmark ----------------------------------------------------------


class Contention:
    """CPU of the whole machine and of our children between start() and stop().

    Others = machine busy minus the benchmark's own process tree (its reaped children),
    as % of one core: what other people's work took meanwhile.
    """

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.machine0 = machine_busy()[0]
        self.kids0 = self._children()
        self.load0 = os.getloadavg()

    def stop(self) -> dict[str, Any]:
        wall = max(time.monotonic() - self.t0, 1e-6)
        machine = 100 * (machine_busy()[0] - self.machine0) / wall
        ours = 100 * (self._children() - self.kids0) / wall
        return {"machine_pct": round(machine, 1), "benchmark_pct": round(ours, 1),
                "others_pct": round(max(0.0, machine - ours), 1),
                "loadavg_start": [round(v, 2) for v in self.load0],
                "loadavg_end": [round(v, 2) for v in os.getloadavg()]}

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime


def stream(argv: list[str], log: Path, prefix: str) -> int:
    """Run ``argv``, its output shown with a prefix and kept in ``log``; its exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                errors="replace")
        try:
            for line in proc.stdout:
                out.write(line)
                sys.stdout.write(f"[{prefix}] {line}")
                sys.stdout.flush()
            return proc.wait()
        except KeyboardInterrupt:
            benchmark_stop(proc)
            raise


def benchmark_stop(proc: subprocess.Popen) -> None:
    """Let a benchmark stop what it started: a Ctrl-C at the terminal reached it too; when
    it did not (run-all got SIGTERM), it gets a SIGINT, which every benchmark cleans up on."""
    for signum, grace in ((None, 5), (signal.SIGINT, 60)):
        if signum is not None and proc.poll() is None:
            proc.send_signal(signum)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()


def benchmark_run(bench: Benchmark, *, outdir: Path, quick: bool,
                  extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run one benchmark; its report entry (status, figures, contention, log)."""
    started_at, commit = now_iso(), commit_info()
    reason = bench.missing()
    if reason:
        print(f"== {bench.name}: skipped: {reason}", flush=True)
        return {"status": "skipped", "reason": reason, "date": started_at}
    json_path = outdir / f"{bench.name}.json"
    json_path.unlink(missing_ok=True)  # an earlier file must not pass for this run's
    log = outdir / "logs" / f"{bench.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(ROOT / bench.script),
            *(bench.quick if quick else bench.args), *extra, "--json", str(json_path)]
    shown = " ".join([bench.script, *argv[2:]]).replace(str(ROOT) + "/", "")
    print(f"\n== {bench.name}: {shown}", flush=True)
    contention = Contention()
    contention.start()
    started = time.monotonic()
    code = stream(argv, log, bench.name)
    entry = {"date": started_at, **commit, "script": bench.script, "command": shown,
             "quick": quick,
             "wall_s": round(time.monotonic() - started, 1), "contention": contention.stop(),
             "log": str(log.relative_to(outdir))}
    if code != 0 or not json_path.exists():
        tail = log.read_text(errors="replace").splitlines()[-15:]
        reason = f"exit code {code}" if code else "no --json output written"
        print(f"== {bench.name}: FAILED ({reason})", flush=True)
        return {**entry, "status": "failed", "reason": reason, "log_tail": tail}
    print(f"== {bench.name}: done in {entry['wall_s']:.0f} s; other processes took "
          f"{entry['contention']['others_pct']:.0f} % of a core meanwhile", flush=True)
    return {**entry, "status": "ok", "result": json.loads(json_path.read_text())}


def entry_merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A failed or skipped attempt keeps the last good result, and says so."""
    if new["status"] == "ok" or not old or not old.get("result"):
        return new
    kept = {k: v for k, v in old.items() if k != "last_attempt"}
    attempt = {k: new[k] for k in ("status", "reason", "date", "log_tail") if k in new}
    return {**kept, "last_attempt": attempt}


def report_load(path: Path) -> dict[str, Any]:
    if path.exists():
        report = json.loads(path.read_text())
        if report.get("schema") == report_writer.SCHEMA:
            return report
    return {"schema": report_writer.SCHEMA, "benchmarks": {}}


def gathered(bench: Benchmark, outdir: Path) -> dict[str, Any]:
    """A benchmark's existing JSON (from a run outside run-all) as a report entry."""
    path = outdir / f"{bench.name}.json"
    if not path.exists():
        return {"status": "skipped", "reason": f"--no-run and no {path.name}", "date": now_iso()}
    result = json.loads(path.read_text())
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    git_field = result.get("machine", {}).get("git") or result.get("data", {}).get("commit")
    return {"status": "ok", "date": mtime.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "commit": (git_field or "").split(" ")[0] or None,
            "dirty": "modified" in (git_field or ""), "script": bench.script, "gathered": True,
            "result": result}


# --- main ---------------------------------------------------------------------------


def selected(args: argparse.Namespace) -> list[Benchmark]:
    names = [b.name for b in BENCHMARKS]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(wanted) - set(names)
        if unknown:
            raise SystemExit(f"unknown benchmark {sorted(unknown)}; choose from {names}")
        return [b for b in BENCHMARKS if b.name in wanted]
    skip = {n.strip() for n in (args.skip or "").split(",") if n.strip()}
    return [b for b in BENCHMARKS if b.name not in skip
            and (not b.optional or (b.name == "sustained" and args.sustained))
            and not (args.quick and b.slow_quick)]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="benchmarks:\n" + "\n".join(
                                    f"  {b.name:<16}{b.what} (about {b.minutes:g} min"
                                    + (", only with --sustained or --only" if b.optional
                                       else "")
                                    + ("; --quick leaves it out" if b.slow_quick else "")
                                    + ")" for b in BENCHMARKS))
    p.add_argument("--quick", action="store_true",
                   help="small sizes, to check the plumbing; writes to bench/results/quick/")
    p.add_argument("--only", help="these benchmarks only, comma separated")
    p.add_argument("--skip", help="leave these out, comma separated")
    p.add_argument("--sustained", action="store_true",
                   help="also the sustained load (15 minutes at 8,000 events/s; not in CI)")
    p.add_argument("--minutes", type=float, help="length of the sustained load")
    p.add_argument("--out", type=Path, help="results folder (default bench/results, "
                                            "bench/results/quick with --quick)")
    p.add_argument("--no-readme", action="store_true",
                   help="do not replace the README's figure tables")
    p.add_argument("--no-run", action="store_true",
                   help="run nothing: gather the benchmarks' JSON files already in the results "
                        "folder into the report")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    outdir = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    outdir.mkdir(parents=True, exist_ok=True)
    benchmarks = selected(args)
    report = report_load(outdir / "report.json")
    report.update(machine=machine(), quick=args.quick)
    signal.signal(signal.SIGTERM, _interrupt)
    started, failed, interrupted = time.monotonic(), [], False
    print(f"run-all: {', '.join(b.name for b in benchmarks)} "
          f"(about {sum(b.minutes for b in benchmarks):g} min at full size)"
          + ("; --quick" if args.quick else ""), flush=True)
    for bench in benchmarks:
        extra = ("--minutes", f"{args.minutes:g}") if bench.name == "sustained" and \
            args.minutes else ()
        try:
            entry = (gathered(bench, outdir) if args.no_run
                     else benchmark_run(bench, outdir=outdir, quick=args.quick, extra=extra))
        except KeyboardInterrupt:
            entry, interrupted = {"status": "interrupted", "date": now_iso()}, True
        report["benchmarks"][bench.name] = entry_merge(report["benchmarks"].get(bench.name),
                                                       entry)
        if entry["status"] == "failed":
            failed.append(bench.name)
        report["updated_at"] = now_iso()
        report_writer.write(report, outdir)  # after each benchmark: nothing done is lost
        if interrupted:
            break
    readme = None if args.no_readme or args.quick or interrupted else ROOT / "README.md"
    replaced = report_writer.write(report, outdir, readme=readme)
    print(f"\nrun-all: {time.monotonic() - started:.0f} s; written {outdir / 'report.json'}, "
          f"{outdir / 'report.md'} and plots" + (f"; README blocks replaced: "
                                                 f"{', '.join(replaced)}" if replaced else ""))
    if failed:
        print(f"FAILED: {', '.join(failed)} (logs in {outdir / 'logs'})")
    return 130 if interrupted else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
