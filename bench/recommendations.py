"""Recommendation serving benchmark: GET /api/v1/recommendations under load, and freshness.

    .venv/bin/python bench/recommendations.py [--seconds 15] [--repeat 3] [--connections 16]

Starts PostgreSQL and Redis on free loopback ports, migrates, creates a site, imports the
shipped Online Retail sample (demo/data: 29,943 purchases of 3,621 customers, 3,227
products), gives SUBJECTS visitors (anon ids, consent for analytics and personalization)
the purchase histories of real customers of that sample as recent views, trains the
model, and serves ``recsite.wsgi`` with gunicorn (2 sync workers) loaded by wrk from
another process (16 connections, each request a random visitor). Phases, each repeated
and quoted as medians:

ceiling   a bare Django view answering one Redis GET of a stored answer (bench/rec_urls.py)
cached    the endpoint with every visitor's answer in the cache (all warmed first)
uncached  the same with RECSITE_REC_CACHE_SECONDS=0: every request reads the visitor's
          history, scores the active model's components, applies the placement's rules
          and diversity (MMR), explains each item and signs a rec_token
fresh     with a Celery worker: a visitor views the first item of their (cached) list,
          posted to collect; the time from its 202 until their list no longer holds it
          (a seen item is never recommended), polled every 20 ms; TRIALS trials

Both throttles count every request at rates that never refuse one (their cost is in the
figures). Each run also reports the CPU time per request of gunicorn, PostgreSQL and Redis
(from /proc): unlike requests per second, it hardly moves when other work shares the
machine, so the capacity of two free cores can be read from it. Prints the figures and
writes bench/results/recommendations.json. Every process it starts is stopped on exit,
Ctrl-C included. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402  (the same process, server and load helpers)
    LUA_COMMON,
    CpuMeter,
    LoadResult,
    Processes,
    gunicorn_start,
    machine_quiet_check,
    redis_flush,
    worker_start,
    wrk_install,
    wrk_run,
)
from devtools import services  # noqa: E402

ORIGIN = "https://bench.example"
# urllib's own user agent is on the crawler list: its events would be dropped as a bot's.
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")
DATA = ROOT / "demo" / "data" / "Online_Retail_sample40k.csv.gz"
RESULTS = ROOT / "bench" / "results" / "recommendations.json"
CEILING_KEY = "bench:ceiling-answer"
TARGETS = {"cached": (2000, 20.0), "uncached": (1000, 40.0)}  # req/s at least, p99 ms at most

# Run inside `manage.py shell`: placements, visitors with real customers' histories as
# recent views (and their consent), a trained model. Prints the bench's facts as JSON.
SETUP = r'''
import json, uuid
from collections import defaultdict
from datetime import timedelta
from django.utils import timezone
from recommend.models import Placement
from recommend.services import site_train
from tracking.models import ConsentReceipt, ConsentRecord, Event, Site
from tracking.services import subject_hash

site = Site.objects.get(public_key="{public_key}")
Placement.objects.create(site=site, name="home", limit=6, diversity="mmr",
                         diversity_lambda=0.3)
baskets = defaultdict(list)
for subject, item in Event.objects.filter(site=site, name="purchase").order_by("ts", "id") \
        .values_list("subject", "item_id"):
    if item not in baskets[subject]:
        baskets[subject].append(item)
histories = [items for _, items in sorted(baskets.items()) if len(items) >= 3]
now = timezone.now()
rows, receipts = [], []
for i in range({subjects}):
    anon = "a_bench-visitor-%06d" % i
    subject = subject_hash(site=site, kind="a", raw_id=anon)
    items = histories[i % len(histories)][-20:]
    for step, item in enumerate(items):
        rows.append(Event(site=site, event_id=uuid.uuid4(), subject=subject, session=anon,
                          name="view_item", item_id=item, source="browser",
                          ts=now - timedelta(hours=2) + timedelta(minutes=step)))
    receipts.append(ConsentReceipt(site=site, subject=subject, analytics=True,
                                   personalization=True, source="api"))
Event.objects.bulk_create(rows, batch_size=5000)
ConsentReceipt.objects.bulk_create(receipts, batch_size=5000)
ConsentRecord.objects.bulk_create(
    [ConsentRecord(site=site, subject=r.subject, analytics=True, personalization=True,
                   receipt=r, updated_at=now) for r in receipts], batch_size=5000)
version = site_train(site=site)
print("BENCHSETUP " + json.dumps({{
    "version": version.pk, "status": version.status, "n_events": version.n_events,
    "n_items": version.n_items, "n_subjects": version.n_subjects,
    "histories": len(histories), "view_rows": len(rows),
    "training_seconds": version.training_seconds}}))
'''

LUA_GET = r"""
function request()
  local i = math.random(0, SUBJECTS - 1)
  return wrk.format("GET", string.format(PATH, i))
end
"""


def lua_get(path: str, subjects: int) -> str:
    """A wrk script GETting ``path`` (a format with the visitor number) for random visitors."""
    head = (f'RUN = "{secrets.token_hex(4)}"\nORIGIN = "{ORIGIN}"\nSUBJECTS = {subjects}\n'
            f'TS_SPREAD_MS = 0\nPATH = "{path}"\n')
    return head + LUA_COMMON + LUA_GET


def rec_path(public_key: str, placement: str = "home", limit: int = 6) -> str:
    return (f"/api/v1/recommendations?site={public_key}&anon_id=a_bench-visitor-%06d"
            f"&placement={placement}&limit={limit}")


def http_get(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Origin": ORIGIN})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def http_post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Origin": ORIGIN, "User-Agent": BROWSER,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Processes, env: dict[str, str],
                 public_key: str, workdir: Path) -> None:
        self.args, self.procs, self.env, self.public_key = args, procs, env, public_key
        self.workdir = workdir
        self.base = ""

    def serve(self, **extra_env: str) -> None:
        """(Re)start gunicorn with these extra settings."""
        self.procs.stop("gunicorn")
        self.base = gunicorn_start(self.procs, {**self.env, **extra_env}, self.args)

    def warm(self, subjects: int) -> float:
        """Ask for every visitor's list once (fills the cache); returns seconds taken."""
        started = time.monotonic()
        for i in range(subjects):
            http_get(self.base + rec_path(self.public_key) % i)
        return time.monotonic() - started

    def load(self, path: str) -> LoadResult:
        """One wrk run; ``extra["cpu_ms"]``: CPU milliseconds per request of the server
        (gunicorn), PostgreSQL and Redis, a figure other load on the machine barely moves."""
        meter = CpuMeter({self.procs.running["gunicorn"].pid: "gunicorn"})
        meter.start()
        result = wrk_run(url=self.base + "/", script=lua_get(path, self.args.subjects),
                         seconds=self.args.seconds, connections=self.args.connections,
                         threads=self.args.wrk_threads, workdir=self.workdir,
                         events_per_request=1, procs=self.procs)
        cpu = meter.stop()
        per_request = result.seconds / max(result.requests, 1) * 10  # % of a core -> ms
        result.extra["cpu_ms"] = {name: round(cpu.get(name, 0.0) * per_request, 3)
                                  for name in ("gunicorn", "postgres", "redis-server")}
        result.extra["others_pct"] = cpu.get("others", 0.0)
        return result

    def phase(self, name: str, path: str) -> list[LoadResult]:
        runs = []
        for run in range(1, self.args.repeat + 1):
            result = self.load(path)
            runs.append(result)
            cpu = result.extra["cpu_ms"]
            print(f"  {name} run {run}: {result.requests_per_s:,.0f} req/s, p50 "
                  f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, errors "
                  f"{result.bad + result.socket_errors} {result.codes or ''}; CPU ms per "
                  f"request: gunicorn {cpu['gunicorn']:.2f}, postgres {cpu['postgres']:.2f}, "
                  f"redis {cpu['redis-server']:.2f}; other processes "
                  f"{result.extra['others_pct']:.0f}% of a core", flush=True)
        return runs

    def freshness(self) -> list[float]:
        """Seconds from a view_item's 202 until the visitor's (cached) list no longer holds
        the viewed item: the first item of their list is viewed, and a seen item is never
        recommended again (the home placement's rule)."""
        times = []
        home = rec_path(self.public_key)
        for trial in range(self.args.trials):
            visitor = self.args.subjects - 1 - trial  # each trial its own visitor
            anon = f"a_bench-visitor-{visitor:06d}"
            shown = http_get(self.base + home % visitor)  # cached from the warm-up
            item = shown["items"][0]["item_id"]
            body = {"site": self.public_key, "sent_at": _iso(), "events": [{
                "event_id": str(uuid.uuid4()), "name": "view_item", "ts": _iso(),
                "anon_id": anon, "session_id": f"s_{anon}", "context": {"device": "desktop"},
                "items": [{"item_id": item}]}]}
            status, result = http_post(self.base + "/api/v1/collect", body)
            accepted = time.monotonic()
            if status != 202 or result["accepted"] != 1:
                raise RuntimeError(f"collect answered {status}: {result}")
            while True:
                answer = http_get(self.base + home % visitor)
                if all(entry["item_id"] != item for entry in answer["items"]):
                    times.append(time.monotonic() - accepted)
                    break
                if time.monotonic() - accepted > 30:
                    times.append(float("inf"))
                    print(f"  trial {trial}: {item} still shown after 30 s; the worker's log:\n"
                          + self.procs.log_tail("worker"), flush=True)
                    break
                time.sleep(0.02)
        return times


def _iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summary(runs: list[LoadResult]) -> dict[str, Any]:
    def median_cpu(name: str) -> float:
        return round(statistics.median(r.extra["cpu_ms"][name] for r in runs), 3)

    return {"requests_per_s": round(statistics.median(r.requests_per_s for r in runs), 1),
            "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
            "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
            "errors": sum(r.bad + r.socket_errors for r in runs),
            "cpu_ms_per_request": {name: median_cpu(name) for name in
                                   ("gunicorn", "postgres", "redis-server")},
            "others_pct_of_a_core": round(statistics.median(r.extra["others_pct"]
                                                            for r in runs), 1),
            "runs": [{"requests_per_s": round(r.requests_per_s, 1), "p50_ms": r.p50_ms,
                      "p99_ms": r.p99_ms, "codes": r.codes, **r.extra} for r in runs]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(args: argparse.Namespace, procs: Processes, service_env: dict[str, str],
        workdir: Path) -> dict[str, Any]:
    env = {
        **os.environ, **service_env,
        "DJANGO_SETTINGS_MODULE": "bench.rec_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SECRET_KEY": secrets.token_urlsafe(40),
        "RECSITE_THROTTLE_KEY_RATE": "1000000/s", "RECSITE_THROTTLE_IP_RATE": "1000000/s",
        "RECSITE_TRAIN_WINDOW_DAYS": "10000",  # the sample's purchases are from 2010-2011
        "RECSITE_MODEL_DIR": str(workdir / "models"),
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    }
    # This process pings the Celery worker with the project's app: same broker.
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL",
                                           "DJANGO_SETTINGS_MODULE", "SECRET_KEY")})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    keys = json.loads(subprocess.run(
        [*manage, "create_site", "Bench", "--origin", ORIGIN, "--json"], env=env, cwd=ROOT,
        check=True, capture_output=True, text=True).stdout)
    public_key = keys["public_key"]
    print("importing the Online Retail sample and training ...", flush=True)
    subprocess.run([*manage, "import_events", "--format", "online-retail", "--site", public_key,
                    str(DATA)], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    out = subprocess.run([*manage, "shell", "-c", SETUP.format(
        public_key=public_key, subjects=args.subjects)], env=env, cwd=ROOT, check=True,
        capture_output=True, text=True).stdout
    setup = json.loads(next(line for line in out.splitlines()
                            if line.startswith("BENCHSETUP ")).removeprefix("BENCHSETUP "))
    print(f"model v{setup['version']} ({setup['status']}): {setup['n_events']:,} events, "
          f"{setup['n_items']:,} items; {args.subjects:,} visitors with real customers' "
          f"histories ({setup['view_rows']:,} views)", flush=True)
    redis_flush(env["REDIS_URL"])
    busy = machine_quiet_check()
    report: dict[str, Any] = {"config": vars(args), "setup": setup,
                              "machine": {"nproc": os.cpu_count(),
                                          "busy_before_pct_of_a_core": round(busy, 1),
                                          "loadavg": os.getloadavg()},
                              "phases": {}}
    if busy > 10:
        print(f"WARNING: other processes use {busy:.0f}% of a core: the figures share the "
              "machine with them", flush=True)
    bench = Bench(args, procs, env, public_key, workdir)
    phases = set(args.phases.split(","))
    if phases & {"ceiling", "cached"}:
        bench.serve()
        print(f"warming the cache: {args.subjects:,} visitors in "
              f"{bench.warm(args.subjects):.1f} s", flush=True)
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        client.set(CEILING_KEY, json.dumps(http_get(bench.base + rec_path(public_key) % 0)))
        client.close()
        for name, path in (("ceiling", "/bench/redis-get?%d"), ("cached", rec_path(public_key))):
            if name in phases:
                report["phases"][name] = summary(bench.phase(name, path))
    if "uncached" in phases:
        bench.serve(RECSITE_REC_CACHE_SECONDS="0")
        bench.warm(50)  # models and catalog loaded in the workers
        report["phases"]["uncached"] = summary(bench.phase("uncached", rec_path(public_key)))
    if "fresh" in phases:
        bench.serve()
        worker_start(procs, env, args)
        bench.warm(args.subjects)
        times = bench.freshness()
        report["phases"]["fresh"] = {
            "trials": len(times), "p50_s": round(statistics.median(times), 3),
            "p95_s": round(percentile(times, 0.95), 3), "max_s": round(max(times), 3)}
    return report


def report_print(report: dict[str, Any]) -> None:
    phases = report["phases"]
    ceiling = phases.get("ceiling", {}).get("requests_per_s")
    print("\nphase      req/s    p50 ms   p99 ms   errors   vs ceiling   server CPU ms/req"
          "   target")
    for name in ("ceiling", "cached", "uncached"):
        if name not in phases:
            continue
        p = phases[name]
        share = f"{p['requests_per_s'] / ceiling:.0%}" if ceiling else "-"
        cpu = sum(p["cpu_ms_per_request"].values())
        target = TARGETS.get(name)
        goal = "" if target is None else (
            f">= {target[0]:,} req/s, p99 <= {target[1]:g} ms: " +
            ("met" if p["requests_per_s"] >= target[0] and p["p99_ms"] <= target[1]
             else "NOT met"))
        print(f"{name:<9}{p['requests_per_s']:>8,.0f}{p['p50_ms']:>10.1f}{p['p99_ms']:>9.1f}"
              f"{p['errors']:>9}{share:>13}{cpu:>20.2f}   {goal}")
    if "fresh" in phases:
        f = phases["fresh"]
        print(f"\nfreshness ({f['trials']} views): p50 {f['p50_s']:.3f} s, p95 {f['p95_s']:.3f} s,"
              f" max {f['max_s']:.3f} s (target: p95 <= 2 s: "
              f"{'met' if f['p95_s'] <= 2 else 'NOT met'})")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15, help="per run")
    p.add_argument("--repeat", type=int, default=3, help="runs per phase (medians)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    p.add_argument("--worker-class", default="sync")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pool", default="solo", help="Celery pool (fresh phase)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--subjects", type=int, default=2000, help="visitors in the load")
    p.add_argument("--trials", type=int, default=30, help="freshness trials")
    p.add_argument("--phases", default="ceiling,cached,uncached,fresh")
    p.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        wrk_install()
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="recsite-bench-rec-"))
    procs = Processes(workdir)
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            service_env = stack.enter_context(services.running(durable=True))
            stack.callback(procs.stop_all)
            started = time.monotonic()
            report = run(args, procs, service_env, workdir)
            report["seconds"] = round(time.monotonic() - started, 1)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    report_print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
