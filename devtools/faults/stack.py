"""One scenario's own running system: PostgreSQL, Redis, gunicorn, a Celery worker and beat.

Every process runs in its own session, so a kill reaches a process and all its
children (the worker's pool included); everything is stopped on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg

from bench.ingest import CONSENT_ALL, Processes, gunicorn_start
from devtools import services
from devtools.faults.reconcile import ServerState

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://shop.example"
# Short enough that a message held by a killed worker comes back within the run; longer
# than any task here takes (production keeps 3600: longer than training runs).
VISIBILITY_TIMEOUT = 30
GUNICORN_WORKERS = 3
WORKER_CONCURRENCY = 2


class Db:
    """Reads for the checks, on a connection opened again after a PostgreSQL restart."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None

    def execute(self, sql: str, params: dict | tuple = ()) -> psycopg.Cursor:
        for attempt in range(2):
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                return self.conn.execute(sql, params)
            except psycopg.OperationalError:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None


class Stack:
    """The running system of one scenario, with the handles to break it."""

    def __init__(self, *, pg: services.PostgresServer, redis: services.RedisServer,
                 procs: Processes, env: dict[str, str], workdir: Path) -> None:
        self.pg, self.redis, self.procs, self.env, self.workdir = pg, redis, procs, env, workdir
        self.db = Db(pg.url)
        self.public_key = ""
        self.site_id = 0
        self.base = ""
        self.worker_starts = 0

    # --- setup -------------------------------------------------------------

    def manage(self, *argv: str) -> str:
        done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *argv], env=self.env,
                              cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
        return done.stdout

    def site_create(self, *, origins: list[str], consenting: int) -> None:
        """A site allowing these origins, with ``consenting`` visitors (a_0 ...) consented."""
        keys = json.loads(self.manage("create_site", "Faults", *[f"--origin={o}" for o in origins],
                                      "--json"))
        self.public_key = keys["public_key"]
        (self.site_id,) = self.db.execute("SELECT id FROM tracking_site WHERE public_key = %s",
                                          (self.public_key,)).fetchone()
        if consenting:
            self.manage("shell", "-c", CONSENT_ALL.format(public_key=self.public_key,
                                                          subjects=consenting))

    def web_start(self) -> None:
        options = SimpleNamespace(workers=GUNICORN_WORKERS, worker_class="sync", threads=1)
        self.base = gunicorn_start(self.procs, self.env, options)

    @property
    def web_port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def beat_start(self) -> None:
        self.procs.start("beat", [sys.executable, "-m", "celery", "-A", "recsite", "beat",
                                  "-l", "warning", "--schedule",
                                  str(self.workdir / "beat-schedule")], self.env)

    # --- the worker --------------------------------------------------------

    def worker_start(self, timeout: float = 60.0) -> float:
        """Start the worker (prefork pool) and wait until it answers a ping; returns seconds."""
        started = time.monotonic()
        self.worker_spawn()
        self.worker_wait(timeout=timeout)
        return time.monotonic() - started

    def worker_spawn(self) -> None:
        self.worker_starts += 1
        # Named on its database connections: a kill can tell whether it was mid-transaction.
        env = {**self.env, "DATABASE_URL": self.pg.url + "?application_name=recsite-worker"}
        self.procs.start("worker", [
            sys.executable, "-m", "celery", "-A", "recsite", "worker", "-Q", "ingest,default",
            "--pool", "prefork", "--concurrency", str(WORKER_CONCURRENCY), "-l", "warning",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", f"faults-{self.worker_starts}@localhost"], env)

    def worker_wait(self, *, timeout: float) -> None:
        """Until the worker answers a ping (it consumes its queues by then)."""
        from celery import Celery

        proc, started = self.procs.running["worker"], time.monotonic()
        control = Celery("faults", broker=self.redis.url)
        try:
            while not control.control.ping(timeout=0.5):
                if proc.poll() is not None or time.monotonic() - started > timeout:
                    raise RuntimeError("the Celery worker did not start:\n"
                                       + self.procs.log_tail("worker"))
        finally:
            control.close()

    def worker_kill(self) -> tuple[int, bool]:
        """kill -9 the worker's main and pool processes at once; returns (processes killed,
        whether one of them was inside a database transaction)."""
        proc = self.procs.running.pop("worker")
        members = process_group(proc.pid)
        (in_transaction,) = self.db.execute(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = "
            "'recsite-worker' AND xact_start IS NOT NULL").fetchone()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return len(members), bool(in_transaction)

    # --- reading the outcome -----------------------------------------------

    def backlog(self) -> int:
        (n,) = self.db.execute("SELECT count(*) FROM tracking_rawbatch WHERE site_id = %s AND "
                               "processed_at IS NULL", (self.site_id,)).fetchone()
        return int(n)

    def wait_drained(self, *, timeout: float) -> float | None:
        """Seconds until no raw batch waits (None if the timeout passed first)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(psycopg.OperationalError):
                if self.backlog() == 0:
                    return time.monotonic() - started
            time.sleep(0.25)
        return None

    def first_processed_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` (epoch) to the first batch processed after it."""
        (first,) = self.db.execute(
            "SELECT extract(epoch FROM min(processed_at)) FROM tracking_rawbatch "
            "WHERE site_id = %s AND processed_at > to_timestamp(%s)",
            (self.site_id, moment)).fetchone()
        return None if first is None else float(first) - moment

    def server_state(self) -> ServerState:
        return ServerState.read(self.db, self.site_id)


def process_group(pgid: int) -> list[int]:
    """The processes of a process group (a session we started), from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


def _environment(pg: services.PostgresServer, redis: services.RedisServer) -> dict[str, str]:
    return {
        **os.environ, "DATABASE_URL": pg.url, "REDIS_URL": redis.url,
        "DJANGO_SETTINGS_MODULE": "recsite.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SECRET_KEY": secrets.token_urlsafe(40), "DEBUG": "0", "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1", "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        # Throttles count every request (their Redis dependency is exercised) but never
        # refuse one: all the load comes from 127.0.0.1.
        "RECSITE_THROTTLE_IP_RATE": "1000000/s", "RECSITE_THROTTLE_KEY_RATE": "1000000/s",
    }


@contextlib.contextmanager
def migrated_template() -> Iterator[Path]:
    """The data directory of a migrated, cleanly stopped PostgreSQL, for each run to copy."""
    started = time.monotonic()
    keep = Path(tempfile.mkdtemp(prefix="recsite-faults-template-"))
    try:
        with services.restartable(durable=True) as (pg, redis):
            subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput",
                            "-v", "0"], env=_environment(pg, redis), cwd=ROOT, check=True,
                           timeout=300)
            pg.stop()
            subprocess.run(["cp", "-a", str(pg.data), str(keep / "pg")], check=True)
        print(f"migrated a template database in {time.monotonic() - started:.1f} s", flush=True)
        yield keep / "pg"
    finally:
        shutil.rmtree(keep, ignore_errors=True)


@contextlib.contextmanager
def running(*, template: Path, keep_logs: bool = False) -> Iterator[Stack]:
    """A fresh system (a copy of the migrated template) for gunicorn, beat and a worker;
    all of it stopped on exit."""
    logdir = Path(tempfile.mkdtemp(prefix="recsite-faults-logs-"))
    procs = Processes(logdir)
    try:
        with services.restartable(durable=True, template=template) as (pg, redis):
            stack = Stack(pg=pg, redis=redis, procs=procs, env=_environment(pg, redis),
                          workdir=logdir)
            try:
                yield stack
            finally:
                for name in list(procs.running):  # throwaway: no long graceful shutdowns
                    procs.stop(name, timeout=3)
                stack.db.close()
    finally:
        if keep_logs:
            print(f"   logs kept in {logdir}", flush=True)
        else:
            shutil.rmtree(logdir, ignore_errors=True)
