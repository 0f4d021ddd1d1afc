"""Ingest benchmark: events/s accepted by /api/v1/collect, and processed end to end.

    .venv/bin/python bench/ingest.py [--seconds 20] [--connections 32] [--repeat 3]

Starts PostgreSQL (fsync on, as in production) and Redis on free loopback
ports, migrates, creates a site, serves ``recsite.wsgi`` with gunicorn and loads
it with wrk (a Lua script builds a fresh body per request: 20 valid wire events
with unique event ids). Each phase is repeated and quoted as medians:

hello  a Django view that does nothing (GET): calibrates this machine against
       the figures in ARCHITECTURE.md.
A      web only, no worker, flat out: accepted events/s (the capacity), latency, errors.
       Flat out, the latency is mostly queueing: wrk keeps --connections requests in
       flight whatever the throughput, so the mean is about connections / req/s.
P      web only, no worker, at a fixed offered rate (--a-rate, 15,000 events/s by
       default, paced as R is): the latency at the load the target names.
W      one Celery worker alone, no load: drains the same pending batches of A
       each run; events/s processed (Event rows plus counted drops).
naive  the baseline (bench/naive.py): a DRF ModelSerializer saving ONE event per
       request with the ORM, same server, same load tool, one event per request.
B      end to end at saturation: the worker drains the outbox while the load runs
       flat out on the same two cores; events/s processed, the backlog sampled
       every second, the drain time after the load stops.
R      end to end at a fixed offered rate (--rate, 8,000 events/s by default;
       wrk paces requests with a per-thread schedule): is all of it accepted and
       processed while it arrives, with a backlog that does not grow?

Each run waits for the machine to be quiet and is measured again (once) when
other processes took CPU meanwhile; the CPU used by every component (gunicorn,
worker, postgres, redis, wrk, others) is reported per run.

Prints the machine, the versions and a table; writes the same figures to
bench/results/ingest.json. Every process it starts is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import PACED_IN_FULL  # noqa: E402
from devtools import services  # noqa: E402

BIN = Path(sys.executable).parent
ORIGIN = "https://bench.example"
EVENTS_PER_BATCH = 20
RESULTS = ROOT / "bench" / "results" / "ingest.json"
# Outcomes of processing that DailyCount records besides the request-time ones.
PROCESSED_OUTCOMES = ("stored", "duplicate", "bot_user_agent", "bot_rate", "noise")


# --- processes --------------------------------------------------------------


class Processes:
    """Every process this benchmark starts, each in its own session, stopped on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115  the child keeps it
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.running[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 15.0) -> None:
        proc = self.running.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        # The whole session: a gunicorn or celery child that outlived its parent too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- CPU accounting from /proc ----------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, comm, cpu seconds of itself and its reaped children)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        table[int(entry)] = (int(fields[1]), comm, ticks / _TICK)
    return table


def cpu_by_component(named: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of each process tree under this one, by component name."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    result: dict[str, float] = {}
    for root in children.get(os.getpid(), []):
        name = named.get(root) or table[root][1]
        stack, total = [root], 0.0
        while stack:
            pid = stack.pop()
            total += table[pid][2]
            stack.extend(children.get(pid, []))
        result[name] = result.get(name, 0.0) + total
    return result


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / _TICK, total / _TICK


class CpuMeter:
    """CPU used by each component between start() and stop(), as % of one core."""

    def __init__(self, named: dict[int, str]) -> None:
        self.named = named

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.c0 = cpu_by_component(self.named)
        self.m0 = machine_busy()
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)
        self.kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        c1 = cpu_by_component(self.named)
        m1 = machine_busy()
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = {name: 100 * (c1[name] - self.c0.get(name, 0.0)) / wall for name in c1}
        # wrk has exited and been reaped by now: its time is in RUSAGE_CHILDREN.
        reaped = (kids1.ru_utime + kids1.ru_stime) - (self.kids0.ru_utime + self.kids0.ru_stime)
        out["wrk"] = 100 * reaped / wall
        out["bench"] = 100 * ((self1.ru_utime + self1.ru_stime)
                              - (self.self0.ru_utime + self.self0.ru_stime)) / wall
        ours = sum(out.values())
        out["machine"] = 100 * (m1[0] - self.m0[0]) / wall
        # Whatever else ran on the machine meanwhile: noise in these figures when large.
        out["others"] = max(0.0, out["machine"] - ours)
        return {k: round(v, 1) for k, v in sorted(out.items()) if v >= 0.05}


def wait_for_quiet(*, limit: float, budget: float, seconds: float = 1.0) -> float:
    """Wait (at most ``budget`` s) until other processes use under ``limit`` % of a core.

    The machine may be shared (tests, other jobs): a run measured while they
    take CPU says little about recsite. Returns the seconds waited.
    """
    started = time.monotonic()
    while time.monotonic() - started < budget:
        if machine_quiet_check(seconds) <= limit:
            break
    return time.monotonic() - started


def machine_quiet_check(seconds: float = 2.0) -> float:
    """CPU % of one core the whole machine uses over the next seconds (ours idle then)."""
    m0 = machine_busy()
    time.sleep(seconds)
    m1 = machine_busy()
    return 100 * (m1[0] - m0[0]) / seconds


# --- the database, read directly (no Django in this process) ---------------


class Db:
    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def one(self, sql: str, params: tuple = ()) -> tuple:
        return self.conn.execute(sql, params).fetchone()

    def backlog(self) -> tuple[int, int]:
        """Unprocessed raw batches and the events in them."""
        n, events = self.one("SELECT count(*), coalesce(sum(n_events), 0) FROM tracking_rawbatch "
                             "WHERE processed_at IS NULL")
        return int(n), int(events)

    def processed(self) -> int:
        """Events that processing has finished with: stored, or dropped for a counted reason."""
        (n,) = self.one("SELECT coalesce(sum(count), 0) FROM tracking_dailycount "
                        "WHERE outcome = ANY(%s)", (list(PROCESSED_OUTCOMES),))
        return int(n)

    def outcomes(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT outcome, sum(count) FROM tracking_dailycount "
                                 "GROUP BY outcome ORDER BY outcome").fetchall()
        return {outcome: int(n) for outcome, n in rows}

    def accepted_stored(self) -> tuple[int, int]:
        """Raw batches stored by the collect view, and the events in them."""
        n, events = self.one("SELECT count(*), coalesce(sum(n_events), 0) FROM tracking_rawbatch")
        return int(n), int(events)

    def truncate(self, *tables: str) -> None:
        self.conn.execute(f"TRUNCATE {', '.join(tables)}")
        self.conn.execute(f"VACUUM ANALYZE {', '.join(tables)}")


# --- wrk and its Lua scripts ------------------------------------------------

# Shared by both scripts: per-thread ids, status counting, a JSON summary at the end.
LUA_COMMON = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

ok, bad, codes = 0, 0, {}
local counter = 0
local sec, sec_iso = -1, ""

function init(args)
  math.randomseed(tid * 7919 + os.time())
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Origin"] = ORIGIN
end

-- unique per run (RUN), thread (tid) and request: UUID-shaped, version 4 bits set
local function event_id()
  counter = counter + 1
  return string.format("%s-%04x-4000-8000-%012x", RUN, tid, counter)
end

local function now_iso()
  local t = os.time()
  if t ~= sec then sec, sec_iso = t, os.date("!%Y-%m-%dT%H:%M:%S", t) end
  return t, sec_iso
end

local function ts_iso(t)
  local back = math.random(0, TS_SPREAD_MS)
  local s = t - math.floor(back / 1000)
  return string.format("%s.%03dZ", os.date("!%Y-%m-%dT%H:%M:%S", s), 999 - back % 1000)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    codes[status] = (codes[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local n_ok, n_bad, all_codes = 0, 0, {}
  for _, thread in ipairs(threads) do
    n_ok = n_ok + thread:get("ok")
    n_bad = n_bad + thread:get("bad")
    for code, n in pairs(thread:get("codes")) do all_codes[code] = (all_codes[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(all_codes) do table.insert(parts, string.format('"%d":%d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"codes":{%s},' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, n_ok, n_bad, table.concat(parts, ","),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

# A batch of 20 wire events: a view_item / add_to_cart / purchase mix with items.
LUA_COLLECT = r"""
local ITEM = '{"item_id":"sku-%d","item_name":"Item %d","item_category":"cat-%d",' ..
             '"price":%d.%02d,"quantity":%d}'
local EVENT = '{"event_id":"%s","name":"%s","ts":"%s","anon_id":"a_%d",' ..
              '"session_id":"s_%s_%d","page":{"url":"https://bench.example/p/%d",' ..
              '"referrer":"","title":"Item %d"},"context":{"device":"mobile",' ..
              '"viewport":"390x844","locale":"en-GB","tz":"Europe/London"},' ..
              '"items":[%s],"params":{%s}}'

local function item(sku)
  return string.format(ITEM, sku, sku, sku % 40, 5 + sku % 95, sku % 100, 1 + sku % 3)
end

local function event(t, who)
  local sku = math.random(1, 5000)
  local roll = math.random(100)
  local name, items, params
  if roll <= 70 then
    name, items = "view_item", item(sku)
    params = string.format('"engaged_ms":%d,"scroll_pct":%d', math.random(500, 60000),
                           math.random(0, 100))
  elseif roll <= 90 then
    name, items, params = "add_to_cart", item(sku), '"engaged_ms":4000'
  else
    name, items = "purchase", item(sku) .. "," .. item(sku % 4999 + 1)
    params = string.format('"transaction_id":"t_%s_%d","value":%d.90,"currency":"EUR"',
                           RUN, counter, math.random(10, 500))
  end
  return string.format(EVENT, event_id(), name, ts_iso(t), who, RUN, who, sku, sku,
                       items, params)
end

function request()
  local t, iso = now_iso()
  local who = math.random(0, SUBJECTS - 1)  -- a tracker's batch is one visitor's
  local events = {}
  for i = 1, PER_REQUEST do events[i] = event(t, who) end
  local body = string.format('{"site":"%s","sent_at":"%s.999Z","events":[%s]}', SITE, iso,
                             table.concat(events, ","))
  return wrk.format(nil, nil, nil, body)
end
"""

# One event per request, in the shape of the Event model (the naive baseline's input).
LUA_NAIVE = r"""
local BODY = '{"site":%d,"event_id":"%s","item_index":0,"subject":"a_%s_%d",' ..
             '"session":"s_%s_%d","name":"view_item","item_id":"sku-%d","ts":"%s",' ..
             '"value":%d.90,"quantity":1,"engaged_ms":%d,"source":"browser",' ..
             '"context":{"device":"mobile","locale":"en-GB",' ..
             '"page":{"url":"https://bench.example/p/%d","referrer":"","title":"Item %d"}}}'

function request()
  local t = now_iso()
  local who, sku = math.random(0, SUBJECTS - 1), math.random(1, 5000)
  local body = string.format(BODY, SITE, event_id(), RUN, who, RUN, who, sku, ts_iso(t),
                             math.random(5, 99), math.random(500, 60000), sku, sku)
  return wrk.format(nil, nil, nil, body)
end
"""


# A GET of a view that does nothing: calibrates the machine (ARCHITECTURE.md: 4,600 req/s).
LUA_HELLO = r"""
function request()
  return wrk.format("GET")
end
"""

LUA_BODIES = {"collect": LUA_COLLECT, "naive": LUA_NAIVE, "hello": LUA_HELLO}
PATHS = {"collect": "/api/v1/collect", "naive": "/bench/naive/event", "hello": "/bench/hello"}
EVENTS_PER_REQUEST = {"collect": EVENTS_PER_BATCH, "naive": 1, "hello": 1}


# An open-loop pace: each wrk thread sends on a fixed schedule (INTERVAL_MS apart)
# whatever the latency, catching up at most one second after a stall.
LUA_PACED = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } recsite_timeval;
int gettimeofday(recsite_timeval *tv, void *tz);
]]
local tv = ffi.new("recsite_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local next_slot = nil
function delay()
  local now = now_ms()
  if next_slot == nil or next_slot < now - 1000 then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + INTERVAL_MS
  if wait < 0 then return 0 end
  return math.floor(wait)
end
"""


def lua_script(kind: str, *, site: str | int, subjects: int, ts_spread_ms: int,
               interval_ms: float | None = None) -> str:
    """The wrk script of one kind of load; paced to one request per ``interval_ms`` per
    thread when given."""
    run = secrets.token_hex(4)
    head = (f'RUN = "{run}"\nORIGIN = "{ORIGIN}"\nSUBJECTS = {subjects}\n'
            f"TS_SPREAD_MS = {ts_spread_ms}\nPER_REQUEST = {EVENTS_PER_BATCH}\n")
    head += f'SITE = "{site}"\n' if kind == "collect" else f"SITE = {int(site)}\n"
    script = head + LUA_COMMON + LUA_BODIES[kind]
    if interval_ms is not None:
        script = f"INTERVAL_MS = {interval_ms:.6f}\n" + script + LUA_PACED
    return script


@dataclass
class LoadResult:
    seconds: float
    requests: int
    ok: int
    bad: int
    codes: dict[str, int]
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    events_per_request: int
    db_events: int | None = None  # accepted events as found in the database afterwards
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.ok * self.events_per_request / self.seconds

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds


def wrk_install() -> None:
    """Debian's wrk, with apt-get when we are root; otherwise say what to install."""
    if os.geteuid() != 0:
        raise SystemExit("wrk not found. Install with: sudo apt-get install -y wrk")
    print("installing wrk with apt-get ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def wrk_run(*, url: str, script: str, seconds: float, connections: int, threads: int,
            workdir: Path, events_per_request: int, procs: Processes) -> LoadResult:
    path = workdir / f"load-{secrets.token_hex(3)}.lua"
    path.write_text(script)
    argv = ["wrk", "-t", str(threads), "-c", str(max(connections, threads)), "-d",
            f"{seconds:g}s", "--timeout", "10s", "-s", str(path), url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    procs.running["wrk"] = proc
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        procs.stop("wrk")
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{text}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    return LoadResult(
        seconds=data["duration_us"] / 1e6, requests=data["requests"], ok=data["ok"],
        bad=data["bad"], codes=data["codes"],
        socket_errors=sum(data[k] for k in ("connect_errors", "read_errors", "write_errors",
                                            "timeouts")),
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        events_per_request=events_per_request,
        extra={"socket_error_kinds": {k: data[k] for k in ("connect_errors", "read_errors",
                                                           "write_errors", "timeouts")}},
    )


# --- servers ----------------------------------------------------------------


def wait_http(url: str, proc: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s")


def gunicorn_start(procs: Processes, env: dict[str, str], args: argparse.Namespace) -> str:
    port = services.free_port()
    argv = [str(BIN / "gunicorn"), "recsite.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(args.workers), "--worker-class", args.worker_class,
            "--backlog", "2048", "--timeout", "60", "--log-level", "warning"]
    if args.worker_class == "gthread":
        argv += ["--threads", str(args.threads), "--keep-alive", "5"]
    proc = procs.start("gunicorn", argv, env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc, "gunicorn")
    return base


def worker_start(procs: Processes, env: dict[str, str], args: argparse.Namespace) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "recsite", "worker", "-Q", "ingest,default",
            "--pool", args.pool, "-l", "warning", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--hostname", f"bench-{os.getpid()}@localhost"]
    if args.pool == "prefork":
        argv += ["--concurrency", str(args.concurrency)]
    proc = procs.start("worker", argv, env)
    from recsite.celery import app

    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not start:\n" + procs.log_tail("worker"))


def redis_flush(url: str) -> None:
    """Forget every Redis key but the cached consent states (which a site keeps warm)."""
    import redis

    client = redis.Redis.from_url(url)
    stale = [key for key in client.scan_iter(count=10_000) if b"tracking:consent:" not in key]
    for start in range(0, len(stale), 10_000):
        client.delete(*stale[start:start + 10_000])
    client.close()


# --- phases -----------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    procs: Processes
    db: Db
    env: dict[str, str]
    base: str
    public_key: str
    site_id: int
    workdir: Path
    named: dict[int, str]

    def load(self, kind: str, seconds: float, rate: float | None = None) -> LoadResult:
        """wrk flat out, or paced to ``rate`` events/s in all."""
        interval_ms = None
        if rate:
            per_thread = rate / EVENTS_PER_REQUEST[kind] / self.args.wrk_threads
            interval_ms = 1000.0 / per_thread
        script = lua_script(kind, site=self.public_key if kind == "collect" else self.site_id,
                            subjects=self.args.subjects, ts_spread_ms=self.args.ts_spread * 1000,
                            interval_ms=interval_ms)
        return wrk_run(url=self.base + PATHS[kind], script=script, seconds=seconds,
                       connections=self.args.connections, threads=self.args.wrk_threads,
                       workdir=self.workdir, events_per_request=EVENTS_PER_REQUEST[kind],
                       procs=self.procs)

    def measured_load(self, kind: str, seconds: float | None = None, rate: float | None = None
                      ) -> tuple[LoadResult, dict[str, float]]:
        meter = CpuMeter(self.named)
        meter.start()
        result = self.load(kind, seconds or self.args.seconds, rate)
        return result, meter.stop()

    def phase_hello(self, run: int) -> dict[str, Any]:
        result, cpu = self.measured_load("hello", self.args.hello_seconds)
        return row_of(result, cpu, phase="hello", run=run)

    def warm_up(self, kind: str) -> None:
        if self.args.warmup > 0:
            self.load(kind, self.args.warmup)

    def phase_a(self, run: int) -> dict[str, Any]:
        self.db.truncate("tracking_rawbatch")
        result, cpu = self.measured_load("collect")
        result.db_events = self.db.accepted_stored()[1]
        return row_of(result, cpu, phase="A", run=run)

    def phase_p(self, run: int) -> dict[str, Any]:
        self.db.truncate("tracking_rawbatch")
        result, cpu = self.measured_load("collect", rate=self.args.a_rate)
        result.db_events = self.db.accepted_stored()[1]
        row = row_of(result, cpu, phase="P", run=run)
        row["offered_events_per_s"] = self.args.a_rate
        return row

    def phase_naive(self, run: int) -> dict[str, Any]:
        self.db.truncate("tracking_event")
        result, cpu = self.measured_load("naive")
        (result.db_events,) = self.db.one("SELECT count(*) FROM tracking_event")
        return row_of(result, cpu, phase="naive", run=run)

    def phase_w(self, run: int) -> dict[str, Any]:
        """The worker alone (no load): drain the same pending batches of phase A each run."""
        from recsite.celery import app

        db = self.db
        db.conn.execute("TRUNCATE tracking_event, tracking_dailycount")
        db.conn.execute("UPDATE tracking_rawbatch SET processed_at = now() "
                        "WHERE processed_at IS NULL")
        db.conn.execute("UPDATE tracking_rawbatch SET processed_at = NULL WHERE id IN "
                        "(SELECT id FROM tracking_rawbatch ORDER BY id LIMIT %s)",
                        (self.args.drain_batches,))
        db.conn.execute("VACUUM ANALYZE tracking_rawbatch, tracking_event")
        batches, events = db.backlog()
        if not batches:
            raise RuntimeError("phase W drains what phase A stored: run A before W")
        meter = CpuMeter(self.named)
        meter.start()
        t0 = sent = time.monotonic()
        app.send_task("tracking.process_outbox", queue="ingest")
        drained = False
        while time.monotonic() - t0 < self.args.drain_timeout:
            if db.backlog()[0] == 0:
                drained = True
                break
            if time.monotonic() - sent > 45:  # one task stops after its 50 s budget
                app.send_task("tracking.process_outbox", queue="ingest")
                sent = time.monotonic()
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        cpu = meter.stop()
        processed = db.processed()
        return {
            "phase": "W", "run": run, "batches": batches, "events": events,
            "seconds": round(seconds, 2), "drained": drained,
            "processed_per_s": round(processed / seconds), "outcomes": db.outcomes(),
            "cpu_pct": cpu,
        }

    def phase_r(self, run: int) -> dict[str, Any]:
        return self.phase_b(run, rate=self.args.rate)

    def phase_b(self, run: int, rate: float | None = None) -> dict[str, Any]:
        self.db.truncate("tracking_rawbatch", "tracking_event", "tracking_dailycount")
        sampler = BacklogSampler(self.env["DATABASE_URL"])
        processed0 = self.db.processed()
        sampler.start()
        t0 = time.monotonic()
        try:
            result, cpu = self.measured_load("collect", rate=rate)
        finally:
            t1 = time.monotonic()
            processed1 = self.db.processed()
            samples = sampler.stop()
        result.db_events = self.db.accepted_stored()[1]
        # The load has stopped: time how long the worker takes to drain what is left.
        backlog_end = self.db.backlog()
        drained_at = None
        deadline = time.monotonic() + self.args.drain_timeout
        while time.monotonic() < deadline:
            if self.db.backlog()[0] == 0:
                drained_at = time.monotonic()
                break
            time.sleep(0.2)
        processed2 = self.db.processed()
        left = self.db.backlog()
        row = row_of(result, cpu, phase="R" if rate else "B", run=run)
        if rate:
            row["offered_events_per_s"] = rate
        load_s = t1 - t0
        during = processed1 - processed0
        row.update(
            processed_per_s=round(during / load_s),
            processed_during_load=during,
            backlog=backlog_summary(samples, load_s),
            drain_s=None if drained_at is None else round(drained_at - t1, 1),
            drain_events=processed2 - processed1,
            drain_events_per_s=(round((processed2 - processed1) / (drained_at - t1))
                                if drained_at and drained_at - t1 > 0.5 else None),
            left_after_drain_timeout=None if drained_at else left[1],
            end_to_end_per_s=(round((processed2 - processed0) / (drained_at - t0))
                              if drained_at else None),
            backlog_at_load_end_events=backlog_end[1],
            outcomes=self.db.outcomes(),
        )
        (row["event_rows_item0"],) = self.db.one(
            "SELECT count(*) FROM tracking_event WHERE item_index = 0")
        return row


class BacklogSampler:
    """Samples the backlog and the processed count once a second on its own connection."""

    def __init__(self, url: str) -> None:
        self.db = Db(url)
        self.samples: list[tuple[float, int, int, int]] = []
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.thread.start()

    def run(self) -> None:
        while not self.halt.is_set():
            batches, events = self.db.backlog()
            self.samples.append((time.monotonic() - self.t0, batches, events,
                                 self.db.processed()))
            self.halt.wait(1.0)

    def stop(self) -> list[tuple[float, int, int, int]]:
        self.halt.set()
        self.thread.join(5)
        self.db.conn.close()
        return self.samples


def measured_run(runner: Any, number: int, args: argparse.Namespace,
                 deadline: float) -> dict[str, Any]:
    """One run of a phase, after the machine is quiet; redone once if others took CPU.

    Past ``deadline`` (monotonic) it neither waits nor measures again, so a busy
    machine cannot stretch the benchmark much past its time budget.
    """
    for attempt in (1, 2):
        spare = deadline - time.monotonic()
        waited = wait_for_quiet(limit=args.others_limit,
                                budget=min(args.quiet_wait, max(0.0, spare)))
        row = runner(number)
        row["waited_for_quiet_s"] = round(waited, 1)
        row["contended"] = row["cpu_pct"].get("others", 0.0) > args.others_limit
        if not row["contended"] or attempt == 2 or time.monotonic() > deadline:
            return row
        print(f"  {row['phase']:<5} run {number}: other processes took "
              f"{row['cpu_pct']['others']:.0f}% of a core meanwhile; measuring again", flush=True)
    return row


def backlog_summary(samples: list[tuple[float, int, int, int]], load_s: float) -> dict[str, Any]:
    """Start, end and max of the backlog (events) and its trend over the second half."""
    if not samples:
        return {}
    events = [s[2] for s in samples]
    half = [(t, e) for t, _, e, _ in samples if t >= load_s / 2] or [(samples[-1][0], events[-1])]
    slope = 0.0
    if len(half) >= 2:
        mean_t = statistics.fmean(t for t, _ in half)
        mean_e = statistics.fmean(e for _, e in half)
        var = sum((t - mean_t) ** 2 for t, _ in half)
        slope = sum((t - mean_t) * (e - mean_e) for t, e in half) / var if var else 0.0
    return {"start": events[0], "end": events[-1], "max": max(events),
            "slope_events_per_s": round(slope), "samples": len(samples),
            "series": [[round(t, 1), e] for t, _, e, _ in samples]}


def row_of(result: LoadResult, cpu: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "seconds": round(result.seconds, 2),
        "requests": result.requests,
        "requests_per_s": round(result.requests_per_s),
        "ok_2xx": result.ok,
        "non_2xx": result.bad,
        "codes": result.codes,
        "socket_errors": result.socket_errors,
        "socket_error_kinds": result.extra.get("socket_error_kinds", {}),
        "events_per_s": round(result.events_per_s),
        "db_accepted_events": result.db_events,
        "p50_ms": round(result.p50_ms, 2),
        "p90_ms": round(result.p90_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "max_ms": round(result.max_ms, 2),
        "cpu_pct": cpu,
    }


# --- machine and versions ---------------------------------------------------


def machine_info(db: Db) -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "-"

    def command_version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "-"
        return (out.stdout or out.stderr).strip().splitlines()[0]

    (pg,) = db.one("SHOW server_version")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": model, "memory_gb": round(mem_kb / 1024 ** 2, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "django": version("django"), "djangorestframework": version("djangorestframework"),
        "gunicorn": version("gunicorn"), "celery": version("celery"),
        "psycopg": version("psycopg"), "orjson": version("orjson"), "postgresql": pg,
        "redis": command_version([services.redis_server_bin(), "--version"]),
        "wrk": command_version(["wrk", "--version"]),
        "git": git + (" (working tree modified)" if dirty else ""),
    }


# --- report -----------------------------------------------------------------


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["events_per_s", "requests_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "non_2xx",
            "socket_errors", "processed_per_s", "drain_s", "drain_events_per_s",
            "end_to_end_per_s"]
    out = {k: median(rows, k) for k in keys if any(r.get(k) is not None for r in rows)}
    if rows and "backlog" in rows[0]:
        for part in ("start", "end", "max", "slope_events_per_s"):
            out[f"backlog_{part}"] = statistics.median(r["backlog"].get(part, 0) for r in rows)
    cpu: dict[str, list[float]] = {}
    for r in rows:
        for name, pct in r["cpu_pct"].items():
            cpu.setdefault(name, []).append(pct)
    out["cpu_pct"] = {name: round(statistics.median(v), 1) for name, v in sorted(cpu.items())}
    out["runs"] = len(rows)
    out["contended_runs"] = sum(1 for r in rows if r.get("contended"))
    return out


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def print_run(row: dict[str, Any]) -> None:
    if row["phase"] == "W":
        print(f"  W     run {row['run']}: drained {fmt(row['events'])} events "
              f"({fmt(row['batches'])} batches) in {row['seconds']:.1f} s: "
              f"{fmt(row['processed_per_s'])} events/s"
              + ("" if row["drained"] else "  [NOT DRAINED within --drain-timeout]")
              + (f"  [CONTENDED: others {row['cpu_pct'].get('others', 0):.0f}%]"
                 if row.get("contended") else ""), flush=True)
        print(f"          outcomes {row['outcomes']}", flush=True)
        print(f"          CPU % of one core: {row['cpu_pct']}", flush=True)
        return
    what = (f"{fmt(row['events_per_s'])} events/s accepted ({fmt(row['requests_per_s'])} req/s)"
            if row["phase"] != "hello" else f"{fmt(row['requests_per_s'])} req/s")
    line = (f"  {row['phase']:<5} run {row['run']}: {what}, p50 {row['p50_ms']:.1f} ms, "
            f"p99 {row['p99_ms']:.1f} ms, non-2xx {row['non_2xx']}, "
            f"socket errors {row['socket_errors']}"
            + (f", in DB {fmt(row['db_accepted_events'])}" if row["db_accepted_events"] is not None
               else ""))
    if row.get("contended"):
        line += f"  [CONTENDED: others {row['cpu_pct'].get('others', 0):.0f}%]"
    print(line, flush=True)
    if row["phase"] in ("B", "R"):
        b = row["backlog"]
        print(f"          processed {fmt(row['processed_per_s'])} events/s during the load; "
              f"backlog (events) start {fmt(b.get('start'))} end {fmt(b.get('end'))} "
              f"max {fmt(b.get('max'))} trend {fmt(b.get('slope_events_per_s'))}/s; "
              f"drained in {fmt(row['drain_s'], 1)} s "
              f"({fmt(row['drain_events_per_s'])} events/s alone); "
              f"end to end {fmt(row['end_to_end_per_s'])} events/s", flush=True)
        print(f"          outcomes {row['outcomes']}", flush=True)
    print(f"          CPU % of one core: {row['cpu_pct']}", flush=True)


def targets(report: dict[str, Any]) -> list[str]:
    """The issue's targets against the medians measured, one line each."""
    lines = []
    a, b = report["medians"].get("A"), report["medians"].get("B")
    p, r = report["medians"].get("P"), report["medians"].get("R")
    config = report["config"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def in_full(events_per_s: float | None, offered: float) -> bool:
        return (events_per_s or 0) >= PACED_IN_FULL * offered

    if p:
        offered = config["a_rate"]
        ok = (offered >= 15000 and in_full(p["events_per_s"], offered) and p["p99_ms"] <= 50
              and not p["non_2xx"] and not p["socket_errors"])
        lines.append(f"target A: >= 15,000 events/s with p99 <= 50 ms: at {fmt(offered)} "
                     f"offered (P) {fmt(p['events_per_s'])} accepted, p99 "
                     f"{fmt(p['p99_ms'], 1)} ms -> {verdict(ok)}")
    if a:
        lines.append(f"target A flat out: >= 15,000 events/s: {fmt(a['events_per_s'])} "
                     f"events/s (p99 {fmt(a['p99_ms'], 1)} ms with {config['connections']} "
                     f"requests in flight) -> {verdict(a['events_per_s'] >= 15000)}")
    if report.get("ratio") is not None:
        lines.append(f"target: >= 20x the naive baseline: {report['ratio']:.1f}x -> "
                     f"{verdict(report['ratio'] >= 20)}")
    for phase, s in (("B", b), ("R", r)):
        if not s:
            continue
        backlog = report.get("backlog_verdict", {}).get(phase)
        if phase == "B":  # flat out
            taken = s["events_per_s"] >= 8000 and (s.get("processed_per_s") or 0) >= 8000
        else:  # paced: all that was offered, accepted and processed as it came
            offered = config["rate"]
            taken = (offered >= 8000 and in_full(s["events_per_s"], offered)
                     and in_full(s.get("processed_per_s"), offered))
        ok = taken and backlog == "steady" and not s["non_2xx"]
        lines.append(f"target {phase}: >= 8,000 events/s accepted and processed, steady backlog: "
                     f"{fmt(s['events_per_s'])} accepted, {fmt(s.get('processed_per_s'))} "
                     f"processed, backlog {backlog} -> {verdict(ok)}")
    return lines


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print("\n" + "=" * 100)
    print(f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['memory_gb']} GB, Linux {m['kernel']}")
    print(f"versions: Python {m['python']}, Django {m['django']}, DRF {m['djangorestframework']}, "
          f"gunicorn {m['gunicorn']}, Celery {m['celery']}, psycopg {m['psycopg']}, "
          f"PostgreSQL {m['postgresql']} (fsync on), {m['redis']}, {m['wrk']}; git {m['git']}")
    c = report["config"]
    server = f"gunicorn {c['workers']} {c['worker_class']} workers"
    if c["worker_class"] == "gthread":
        server += f" x {c['threads']} threads"
    worker = f"celery --pool {c['pool']}" + (f" -c {c['concurrency']}"
                                             if c["pool"] == "prefork" else "")
    print(f"config: {server}; {worker}; wrk -t{c['wrk_threads']} -c{c['connections']} "
          f"{c['seconds']:g} s x {c['repeat']} runs (medians); {EVENTS_PER_BATCH} events per "
          f"batch; {c['subjects']} anon ids per run; consent "
          f"{'not required' if c['no_consent'] else 'required and checked'}; throttles "
          f"{'off' if c['no_throttles'] else 'counting every request'}")
    print("-" * 100)
    head = (f"{'phase':<30}{'events/s':>10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'non-2xx':>9}{'sock err':>9}")
    print(head)
    labels = {"hello": "hello  Django no-op view (GET)", "A": "A  collect, web only",
              "P": f"P  collect, {report['config']['a_rate']:,.0f}/s",
              "naive": "naive  DRF ORM 1 event/req", "B": "B  collect + worker, flat out",
              "R": f"R  collect + worker, {report['config']['rate']:,.0f}/s"}
    w = report["medians"].get("W")
    for phase in ("hello", "A", "P", "naive", "B", "R"):
        s = report["medians"].get(phase)
        if not s:
            continue
        events = "-" if phase == "hello" else fmt(s["events_per_s"])
        print(f"{labels[phase]:<30}{events:>10}{fmt(s['requests_per_s']):>8}"
              f"{fmt(s['p50_ms'], 1):>8}{fmt(s['p99_ms'], 1):>8}{fmt(s['non_2xx']):>9}"
              f"{fmt(s['socket_errors']):>9}")
    b = report["medians"].get("B")
    if w or b or report["medians"].get("R"):
        print("-" * 100)
    if w:
        print(f"W  worker alone (no load) drains {fmt(report['config']['drain_batches'])} pending "
              f"batches of A: {fmt(w.get('processed_per_s'))} events/s processed "
              f"(Event rows + counted drops)")
    for phase in ("B", "R"):
        s = report["medians"].get(phase)
        if not s:
            continue
        print(f"{phase} end to end: processed {fmt(s.get('processed_per_s'))} events/s during "
              f"the load (accepted {fmt(s['events_per_s'])}); backlog events start "
              f"{fmt(s.get('backlog_start'))} / end {fmt(s.get('backlog_end'))} / max "
              f"{fmt(s.get('backlog_max'))}, trend {fmt(s.get('backlog_slope_events_per_s'))} "
              f"events/s -> {report['backlog_verdict'][phase]}")
        print(f"  after the load: the remainder drained in {fmt(s.get('drain_s'), 1)} s "
              f"({fmt(s.get('drain_events_per_s'))} events/s); load + drain end to end "
              f"{fmt(s.get('end_to_end_per_s'))} events/s")
    contended = {p: s["contended_runs"] for p, s in report["medians"].items()
                 if s.get("contended_runs")}
    if contended:
        print(f"NOTE: runs during which other processes took over "
              f"{report['config']['others_limit']:g}% of a core: {contended}")
    if report.get("ratio") is not None:
        print(f"ratio accepted events/s, ours (A) / naive: {report['ratio']:.1f}x")
    for line in targets(report):
        print(line)
    for phase in ("hello", "A", "P", "W", "naive", "B", "R"):
        s = report["medians"].get(phase)
        if s:
            print(f"CPU % of one core ({phase}, 200 = both cores): {s['cpu_pct']}")
    print("=" * 100)


# --- main -------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seconds", type=float, default=20, help="load time of each measured run")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--repeat", type=int, default=3, help="runs per phase (medians quoted)")
    p.add_argument("--phases", default="hello,A,P,W,naive,B,R",
                   help="which phases, comma separated (hello, A, P, W, naive, B, R)")
    p.add_argument("--rate", type=float, default=8000,
                   help="events/s offered in phase R (paced, not flat out)")
    p.add_argument("--a-rate", type=float, default=15000,
                   help="events/s offered in phase P (collect alone, paced): the latency at "
                        "the target's load")
    p.add_argument("--drain-batches", type=int, default=2500,
                   help="pending batches of phase A that phase W drains in each run")
    p.add_argument("--hello-seconds", type=float, default=5,
                   help="load time of each run of the hello calibration")
    p.add_argument("--workers", type=int, default=4,
                   help="gunicorn worker processes (gunicorn advises 2-4 per core; a sync "
                        "worker waits on each commit)")
    p.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    p.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--pool", default="solo", choices=["solo", "prefork"], help="celery pool")
    p.add_argument("--concurrency", type=int, default=1, help="prefork processes")
    p.add_argument("--subjects", type=int, default=20000,
                   help="distinct anon ids per run. The bot rule drops every event of an id "
                        "sending over 10 a second: with a few hundred ids at these rates most "
                        "events are dropped as bots, and the worker skips their inserts")
    p.add_argument("--ts-spread", type=int, default=60,
                   help="event times lie up to this many seconds before sent_at")
    p.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring")
    p.add_argument("--drain-timeout", type=float, default=90,
                   help="longest wait for the worker to drain after a phase B run")
    p.add_argument("--others-limit", type=float, default=15,
                   help="CPU %% of a core that other processes may use during a run before it "
                        "is measured again (once)")
    p.add_argument("--quiet-wait", type=float, default=20,
                   help="longest wait for other processes to go quiet before each run")
    p.add_argument("--time-budget", type=float, default=480,
                   help="seconds after which runs are no longer delayed or redone for "
                        "other processes")
    p.add_argument("--keep-logs", action="store_true", help="keep the server logs (path printed)")
    p.add_argument("--no-consent", action="store_true",
                   help="a site that does not require consent (skips the consent check)")
    p.add_argument("--no-throttles", action="store_true",
                   help="switch both throttles off (by default they count every request)")
    p.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if shutil.which("wrk") is None:
        wrk_install()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="recsite-bench-"))
    procs = Processes(workdir)
    try:
        with contextlib.ExitStack() as stack:
            if args.keep_logs:
                stack.callback(print, f"logs kept in {workdir}", file=sys.stderr)
            else:
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            service_env = stack.enter_context(services.running(durable=True))
            # Exit order is the reverse: ignore a second Ctrl-C, stop our processes, then
            # the servers above them.
            stack.callback(procs.stop_all)
            stack.callback(_ignore_signals)
            return run(args, phases, procs, service_env, workdir, started)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# Consent for analytics for a_0 ... a_{subjects - 1}: receipts, current states and their
# cached copies, in bulk.
CONSENT_ALL = """
from django.utils import timezone
from tracking.models import ConsentReceipt, ConsentRecord, Site
from tracking.services import subject_hash
site = Site.objects.get(public_key="{public_key}")
receipts = ConsentReceipt.objects.bulk_create(
    [ConsentReceipt(site=site, subject=subject_hash(site=site, kind="a", raw_id=f"a_{{i}}"),
                    analytics=True, personalization=False, source="api")
     for i in range({subjects})], batch_size=5000)
ConsentRecord.objects.bulk_create(
    [ConsentRecord(site=site, subject=r.subject, analytics=True, personalization=False,
                   receipt=r, updated_at=timezone.now()) for r in receipts], batch_size=5000)
# The cache as consent_record leaves it (its receiver writes the state on commit);
# bulk_create sends no signals.
from django.core.cache import cache
from tracking.services import CONSENT_CACHE_SECONDS, consent_cache_key
cache.set_many({{consent_cache_key(site.pk, r.subject): 1 for r in receipts}},
               timeout=CONSENT_CACHE_SECONDS)
"""


def run(args: argparse.Namespace, phases: list[str], procs: Processes,
        service_env: dict[str, str], workdir: Path, started: float) -> int:
    env = {
        **os.environ, **service_env,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SECRET_KEY": secrets.token_urlsafe(40),
        # Both throttles count every request (all of it comes from 127.0.0.1) at rates
        # that never refuse one: their cost is measured, not their limit.
        "RECSITE_THROTTLE_KEY_RATE": "off" if args.no_throttles else "1000000/s",
        "RECSITE_THROTTLE_IP_RATE": "off" if args.no_throttles else "1000000/s",
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL",
                                           "DJANGO_SETTINGS_MODULE", "SECRET_KEY")})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    keys = json.loads(subprocess.run(
        [*manage, "create_site", "Bench", "--origin", ORIGIN, "--json",
         *(["--no-consent-required"] if args.no_consent else [])],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout)
    if not args.no_consent:  # every anon id of the load has consented, as through the banner
        subprocess.run([*manage, "shell", "-c", CONSENT_ALL.format(
            public_key=keys["public_key"], subjects=args.subjects)],
            env=env, cwd=ROOT, check=True)
    db = Db(env["DATABASE_URL"])
    (site_id,) = db.one("SELECT id FROM tracking_site WHERE public_key = %s",
                        (keys["public_key"],))
    report: dict[str, Any] = {
        "machine": machine_info(db),
        "config": {k: getattr(args, k) for k in (
            "seconds", "connections", "repeat", "workers", "worker_class", "threads",
            "wrk_threads", "pool", "concurrency", "subjects", "ts_spread", "warmup",
            "others_limit", "drain_batches", "rate", "a_rate", "no_consent",
            "no_throttles")},
        "runs": [], "medians": {},
    }
    m = report["machine"]
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}); Python {m['python']}, "
          f"PostgreSQL {m['postgresql']}, {m['wrk']}", flush=True)
    redis_flush(env["REDIS_URL"])
    idle = machine_quiet_check()
    report["machine"]["busy_before_pct"] = round(idle, 1)
    if idle > 10:
        print(f"WARNING: other processes use {idle:.0f}% of a core before the benchmark starts; "
              "the figures below share the machine with them", flush=True)
    try:
        base = gunicorn_start(procs, env, args)
        named = {procs.running["gunicorn"].pid: "gunicorn"}
        bench = Bench(args=args, procs=procs, db=db, env=env, base=base,
                      public_key=keys["public_key"], site_id=site_id, workdir=workdir,
                      named=named)
        print(f"gunicorn on {base}; load {args.seconds:g} s x {args.repeat} per phase",
              flush=True)
        runners = {"hello": bench.phase_hello, "A": bench.phase_a, "P": bench.phase_p,
                   "W": bench.phase_w,
                   "naive": bench.phase_naive, "B": bench.phase_b, "R": bench.phase_r}
        unknown = set(phases) - set(runners)
        if unknown:
            raise SystemExit(f"unknown phase {sorted(unknown)[0]!r}; choose from {list(runners)}")
        for phase in phases:
            if phase in ("W", "B", "R"):
                if phase in ("B", "R"):
                    db.truncate("tracking_rawbatch")
                redis_flush(env["REDIS_URL"])  # no stale flag or message; before the worker
                worker_start(procs, env, args)
                named[procs.running["worker"].pid] = "worker"
            if phase != "W":
                bench.warm_up("collect" if phase in ("A", "P", "B", "R") else phase)
            rows = []
            for number in range(1, args.repeat + 1):
                row = measured_run(runners[phase], number, args,
                                   deadline=started + args.time_budget)
                print_run(row)
                rows.append(row)
            report["runs"].extend(rows)
            report["medians"][phase] = summarize(rows)
            if phase in ("W", "B", "R"):
                procs.stop("worker")
    except Exception:
        for name in ("gunicorn", "worker"):
            tail = procs.log_tail(name)
            if tail:
                print(f"--- {name} log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        db.conn.close()
    a, naive = report["medians"].get("A"), report["medians"].get("naive")
    report["ratio"] = (a["events_per_s"] / naive["events_per_s"]
                       if a and naive and naive["events_per_s"] else None)
    report["backlog_verdict"] = {}
    for phase in ("B", "R"):
        s = report["medians"].get(phase)
        if s:
            growing = (s["backlog_slope_events_per_s"] > 0.05 * s["events_per_s"]
                       and s["backlog_end"] > s["backlog_start"])
            report["backlog_verdict"][phase] = "GROWING" if growing else "steady"
    report["targets"] = targets(report)
    report["wall_seconds"] = round(time.monotonic() - started)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"written: {args.json}")
    print(f"wall time {report['wall_seconds']} s")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
