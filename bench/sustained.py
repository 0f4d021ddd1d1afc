"""Sustained ingest load: collect + worker at a paced rate for minutes, latency and lag over time.

    .venv/bin/python bench/sustained.py [--minutes 15] [--rate 8000] [--window 30]

Starts PostgreSQL (fsync on) and Redis, serves collect with gunicorn and runs one
Celery worker, as bench/ingest.py's phase R does (same server, worker, wrk load and
consented visitors), but for ``--minutes`` at ``--rate`` events/s offered (batches of
20 events, paced by wrk's per-thread schedule). The load runs as consecutive wrk runs
of ``--window`` seconds, each a point in time:

- API latency: wrk's p50 / p90 / p99 per window, and the whole run's percentiles from
  the windows' latency percentiles, merged by their numbers of requests;
- accepted -> stored lag: ``processed_at - received_at`` of each raw batch, both set by
  the server's clock: received_at by the collect view, processed_at by the worker
  right after the batch's events are inserted, in the same transaction (the commit
  follows within milliseconds). Read from the database after each window (indexed,
  one query), so measuring it adds no work to the pipeline; p50 / p95 / p99 per window
  and over every batch received during the load;
- events/s accepted and processed, the outbox backlog, CPU by component (others' CPU
  included: a shared machine shows in it).

wrk measures latency from the moment it sends a request (a request whose turn comes
while its connection still waits is sent late, not counted as waiting). Prints a line
per window and a summary; writes the figures to bench/results/sustained.json (or
``--json``). Every process it starts is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402  (the same server, worker and load as phase R)
    CONSENT_ALL,
    EVENTS_PER_BATCH,
    ORIGIN,
    CpuMeter,
    Db,
    LoadResult,
    Processes,
    gunicorn_start,
    lua_script,
    machine_info,
    machine_quiet_check,
    redis_flush,
    worker_start,
    wrk_install,
)
from devtools import services  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sustained.json"
# Percentiles (in %) of each window's latency that wrk reports: every 0.5 % up to 99, then
# finer in the tail. Windows are merged by weighting each value with its share of requests.
QUANTILES = (tuple(q / 2 for q in range(1, 199)) + tuple(99 + q / 10 for q in range(1, 10))
             + tuple(99.9 + q / 100 for q in range(1, 10)) + (100.0,))

# Appended to phase R's script: after its summary, the window's latency at QUANTILES (us).
LUA_QUANTILES = r"""
local summary_done = done
function done(summary, latency, requests)
  summary_done(summary, latency, requests)
  local values = {}
  if summary.requests > 0 then
    for i, q in ipairs(QUANTILES) do values[i] = string.format("%d", latency:percentile(q)) end
  end
  io.write("BENCHQ " .. table.concat(values, ",") .. "\n")
end
"""

LAG_SQL = """
SELECT count(*),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY lag),
       max(lag)
FROM (SELECT extract(epoch FROM processed_at - received_at)::float8 AS lag
      FROM tracking_rawbatch WHERE {where}) AS batches
"""


# --- pure helpers (unit-tested) ------------------------------------------------------


def latency_sketch(text: str, requests: int) -> list[tuple[float, float]]:
    """A BENCHQ payload (latency in us at QUANTILES) as (ms, requests it stands for)."""
    values = [float(v) / 1000 for v in filter(None, text.strip().split(","))]
    if not values or not requests:
        return []
    shares = [b - a for a, b in zip((0.0, *QUANTILES), QUANTILES, strict=False)]
    return [(value, requests * share / 100) for value, share in
            zip(values, shares, strict=True)]


def sketch_percentiles(sketch: list[tuple[float, float]],
                       quantiles: tuple[float, ...]) -> dict[str, float | None]:
    """Percentiles in ms of the windows' merged latency sketches (``quantiles`` as fractions)."""
    total = sum(weight for _, weight in sketch)
    ordered = sorted(sketch)
    out: dict[str, float | None] = {}
    for q in quantiles:
        key, seen, out[f"p{q * 100:g}_ms"] = f"p{q * 100:g}_ms", 0.0, None
        for value, weight in ordered:
            seen += weight
            if seen >= q * total * (1 - 1e-9):
                out[key] = round(value, 1)
                break
    return out


def lag_of(row: tuple[Any, ...]) -> dict[str, Any]:
    """LAG_SQL's row as seconds: batches, p50, p95, p99, max."""
    n, quantiles, longest = row
    quantiles = quantiles or [None, None, None]

    def seconds(value: Any) -> float | None:
        return None if value is None else round(float(value), 3)

    return {"batches": int(n), "p50_s": seconds(quantiles[0]), "p95_s": seconds(quantiles[1]),
            "p99_s": seconds(quantiles[2]), "max_s": seconds(longest)}


# --- the load ------------------------------------------------------------------------


def wrk_window(*, url: str, script: str, seconds: float, args: argparse.Namespace,
               workdir: Path, procs: Processes) -> tuple[LoadResult, list[tuple[float, float]]]:
    """One paced wrk run: its summary and its latency sketch (see latency_sketch)."""
    path = workdir / f"window-{secrets.token_hex(3)}.lua"
    path.write_text(script)
    argv = ["wrk", "-t", str(args.wrk_threads), "-c", str(max(args.connections, args.wrk_threads)),
            "-d", f"{seconds:g}s", "--timeout", "10s", "-s", str(path), url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    procs.running["wrk"] = proc
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        procs.stop("wrk")
    path.unlink(missing_ok=True)
    lines = out.decode(errors="replace").splitlines()
    summary = next((ln for ln in lines if ln.startswith("BENCHJSON ")), None)
    quantiles = next((ln for ln in lines if ln.startswith("BENCHQ")), None)
    if summary is None or quantiles is None:
        raise RuntimeError("wrk printed no summary:\n" + "\n".join(lines))
    data = json.loads(summary.removeprefix("BENCHJSON "))
    result = LoadResult(
        seconds=data["duration_us"] / 1e6, requests=data["requests"], ok=data["ok"],
        bad=data["bad"], codes=data["codes"],
        socket_errors=sum(data[k] for k in ("connect_errors", "read_errors", "write_errors",
                                            "timeouts")),
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        events_per_request=EVENTS_PER_BATCH)
    return result, latency_sketch(quantiles.removeprefix("BENCHQ"), result.requests)


def window_point(*, t: float, result: LoadResult, cpu: dict[str, float], processed: int,
                 lag: dict[str, Any], backlog: tuple[int, int]) -> dict[str, Any]:
    """One window's figures."""
    return {
        "t_s": round(t, 1), "seconds": round(result.seconds, 2), "requests": result.requests,
        "ok_2xx": result.ok, "non_2xx": result.bad, "codes": result.codes,
        "socket_errors": result.socket_errors,
        "accepted_events_per_s": round(result.events_per_s),
        "processed_events_per_s": round(processed / result.seconds) if result.seconds else None,
        "p50_ms": round(result.p50_ms, 1), "p90_ms": round(result.p90_ms, 1),
        "p99_ms": round(result.p99_ms, 1), "max_ms": round(result.max_ms, 1),
        "lag": lag, "backlog_batches": backlog[0], "backlog_events": backlog[1],
        "cpu_pct": cpu,
    }


def print_point(point: dict[str, Any]) -> None:
    lag = point["lag"]
    print(f"  t={point['t_s']:>6.0f} s  accepted {point['accepted_events_per_s']:>6,} ev/s  "
          f"processed {point['processed_events_per_s'] or 0:>6,} ev/s  "
          f"p50 {point['p50_ms']:6.1f} p99 {point['p99_ms']:7.1f} ms  "
          f"lag p95 {_seconds(lag['p95_s'])} p99 {_seconds(lag['p99_s'])}  "
          f"backlog {point['backlog_events']:>6,} ev  errors "
          f"{point['non_2xx'] + point['socket_errors']}  others "
          f"{point['cpu_pct'].get('others', 0):.0f}% of a core", flush=True)


def _seconds(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f} s"


def sustain(args: argparse.Namespace, procs: Processes, db: Db, base: str,
            public_key: str, workdir: Path) -> dict[str, Any]:
    """The measured load: consecutive windows, then the drain and the whole run's figures."""
    named = {procs.running["gunicorn"].pid: "gunicorn", procs.running["worker"].pid: "worker"}
    interval_ms = 1000.0 / (args.rate / EVENTS_PER_BATCH / args.wrk_threads)
    script = (lua_script("collect", site=public_key, subjects=args.subjects,
                         ts_spread_ms=args.ts_spread * 1000, interval_ms=interval_ms)
              + f"QUANTILES = {{{', '.join(f'{q:g}' for q in QUANTILES)}}}\n" + LUA_QUANTILES)
    url = base + "/api/v1/collect"
    if args.warmup > 0:
        wrk_window(url=url, script=script, seconds=args.warmup, args=args, workdir=workdir,
                   procs=procs)
    sketch: list[tuple[float, float]] = []
    points = []
    load_start = mark = datetime.now(UTC)
    t0 = time.monotonic()
    processed_start = processed_mark = db.processed()
    for _ in range(max(1, math.ceil(args.minutes * 60 / args.window))):
        meter = CpuMeter(named)
        meter.start()
        result, window_sketch = wrk_window(url=url, script=script, seconds=args.window, args=args,
                                  workdir=workdir, procs=procs)
        cpu = meter.stop()
        sketch += window_sketch
        # Contiguous windows of the server's clock: every batch counts in exactly one.
        end, processed = datetime.now(UTC), db.processed()
        lag = lag_of(db.one(LAG_SQL.format(where="processed_at >= %s AND processed_at < %s"),
                            (mark, end)))
        points.append(window_point(t=time.monotonic() - t0, result=result, cpu=cpu,
                                   processed=processed - processed_mark, lag=lag,
                                   backlog=db.backlog()))
        print_point(points[-1])
        mark, processed_mark = end, processed
    load_s, load_end = time.monotonic() - t0, datetime.now(UTC)
    processed_during = db.processed() - processed_start
    drained = drain_wait(db, args.drain_timeout)
    return whole_run(points, sketch, db=db, load_start=load_start, load_end=load_end,
                     load_s=load_s, processed=processed_during, drained=drained,
                     offered=args.rate)


def whole_run(points: list[dict[str, Any]], sketch: list[tuple[float, float]], *, db: Db,
              load_start: datetime, load_end: datetime, load_s: float, processed: int,
              drained: float | None, offered: float) -> dict[str, Any]:
    """The figures of the whole load from its windows and the database."""
    lag = lag_of(db.one(LAG_SQL.format(
        where="received_at >= %s AND received_at < %s AND processed_at IS NOT NULL"),
        (load_start, load_end)))
    (unprocessed,) = db.one("SELECT count(*) FROM tracking_rawbatch WHERE received_at >= %s "
                            "AND processed_at IS NULL", (load_start,))
    ok = sum(p["ok_2xx"] for p in points)
    return {
        "load_seconds": round(load_s, 1), "windows": len(points),
        "requests": sum(p["requests"] for p in points), "ok_2xx": ok,
        "non_2xx": sum(p["non_2xx"] for p in points),
        "socket_errors": sum(p["socket_errors"] for p in points),
        "offered_events_per_s": offered,
        "accepted_events_per_s": round(ok * EVENTS_PER_BATCH / load_s),
        "processed_events_per_s": round(processed / load_s),
        "latency": {**sketch_percentiles(sketch, (0.5, 0.9, 0.99, 0.999)),
                    "window_p99_ms_min": min(p["p99_ms"] for p in points),
                    "window_p99_ms_max": max(p["p99_ms"] for p in points)},
        "lag": {**lag, "unprocessed_batches": int(unprocessed)},
        "drained_after_s": drained,
        "backlog_events_max": max(p["backlog_events"] for p in points),
        "others_pct_of_a_core": round(statistics.median(
            p["cpu_pct"].get("others", 0.0) for p in points), 1),
        "points": points,
    }


def drain_wait(db: Db, timeout: float) -> float | None:
    """Seconds until the outbox is empty after the load (None: not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if db.backlog()[0] == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(0.2)
    return None


# --- set-up and main -----------------------------------------------------------------


def environment(service_env: dict[str, str]) -> dict[str, str]:
    """The servers' environment: bench settings, throttles counting every request."""
    return {
        **os.environ, **service_env,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SECRET_KEY": secrets.token_urlsafe(40),
        "RECSITE_THROTTLE_KEY_RATE": "1000000/s", "RECSITE_THROTTLE_IP_RATE": "1000000/s",
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    }


def site_with_consent(env: dict[str, str], subjects: int) -> str:
    """A site requiring consent, every anon id of the load consented; its public key."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    keys = json.loads(subprocess.run(
        [*manage, "create_site", "Bench", "--origin", ORIGIN, "--json"], env=env, cwd=ROOT,
        check=True, capture_output=True, text=True).stdout)
    subprocess.run([*manage, "shell", "-c", CONSENT_ALL.format(
        public_key=keys["public_key"], subjects=subjects)], env=env, cwd=ROOT, check=True)
    return keys["public_key"]


def run(args: argparse.Namespace, procs: Processes, service_env: dict[str, str],
        workdir: Path) -> dict[str, Any]:
    env = environment(service_env)
    # This process pings the worker with the project's Celery app: same broker.
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL",
                                           "DJANGO_SETTINGS_MODULE", "SECRET_KEY")})
    public_key = site_with_consent(env, args.subjects)
    db = Db(env["DATABASE_URL"])
    try:
        redis_flush(env["REDIS_URL"])
        busy = machine_quiet_check()
        report: dict[str, Any] = {
            "machine": {**machine_info(db), "busy_before_pct": round(busy, 1),
                        "loadavg_start": os.getloadavg()},
            "config": {k: getattr(args, k) for k in (
                "minutes", "rate", "window", "connections", "workers", "worker_class",
                "threads", "wrk_threads", "pool", "concurrency", "subjects", "ts_spread",
                "warmup", "drain_timeout")},
        }
        base = gunicorn_start(procs, env, args)
        worker_start(procs, env, args)
        print(f"{args.minutes:g} min at {args.rate:,.0f} events/s offered "
              f"({args.rate / EVENTS_PER_BATCH:,.0f} requests/s), windows of {args.window:g} s",
              flush=True)
        report.update(sustain(args, procs, db, base, public_key, workdir))
        report["machine"]["loadavg_end"] = os.getloadavg()
    finally:
        db.conn.close()
    return report


def summary_print(report: dict[str, Any]) -> None:
    lat, lag = report["latency"], report["lag"]
    print("\n" + "=" * 90)
    print(f"sustained {report['load_seconds'] / 60:.1f} min, {report['offered_events_per_s']:,.0f} "
          f"events/s offered: accepted {report['accepted_events_per_s']:,} events/s, processed "
          f"{report['processed_events_per_s']:,} events/s")
    print(f"API latency over the run: p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 "
          f"{lat['p99_ms']} ms, p99.9 {lat['p99.9_ms']} ms (window p99 from "
          f"{lat['window_p99_ms_min']} to {lat['window_p99_ms_max']} ms)")
    print(f"accepted -> stored lag ({lag['batches']:,} batches): p50 {lag['p50_s']} s, p95 "
          f"{lag['p95_s']} s, p99 {lag['p99_s']} s, max {lag['max_s']} s; "
          f"unprocessed after the drain: {lag['unprocessed_batches']}")
    print(f"errors: {report['non_2xx']} non-2xx, {report['socket_errors']} socket; backlog max "
          f"{report['backlog_events_max']:,} events; drained {report['drained_after_s']} s after "
          f"the load; others' CPU (median of windows) {report['others_pct_of_a_core']}% of a core")
    print("=" * 90)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, default=15, help="length of the measured load")
    p.add_argument("--rate", type=float, default=8000, help="events/s offered (paced)")
    p.add_argument("--window", type=float, default=30, help="seconds per point in time")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    p.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    p.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--pool", default="solo", choices=["solo", "prefork"], help="celery pool")
    p.add_argument("--concurrency", type=int, default=1, help="prefork processes")
    p.add_argument("--subjects", type=int, default=20000, help="distinct consented anon ids")
    p.add_argument("--ts-spread", type=int, default=60,
                   help="event times lie up to this many seconds before sent_at")
    p.add_argument("--warmup", type=float, default=5, help="seconds of load before measuring")
    p.add_argument("--drain-timeout", type=float, default=120,
                   help="longest wait for the worker to drain after the load")
    p.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    p.add_argument("--keep-logs", action="store_true", help="keep the server logs (path printed)")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        wrk_install()
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="recsite-bench-sustained-"))
    procs = Processes(workdir)
    try:
        with contextlib.ExitStack() as stack:
            if args.keep_logs:
                stack.callback(print, f"logs kept in {workdir}", file=sys.stderr)
            else:
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            service_env = stack.enter_context(services.running(durable=True))
            stack.callback(procs.stop_all)
            report = run(args, procs, service_env, workdir)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    summary_print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
