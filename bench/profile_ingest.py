"""Where the ingest time goes, in-process: the collect path per stage, and the outbox drain.

    .venv/bin/python bench/profile_ingest.py [--requests 1500] [--batches 2500] [--cprofile]

Starts PostgreSQL (fsync on) and Redis like bench/ingest.py, then, in this one
process, with no HTTP server and no other load:

web     CPU per collect request of 20 events, stage by stage (parse, depth check,
        validation, serialisation, the RawBatch insert, the outbox flag, the
        connection health check), the view alone and the full Django stack, with
        the cheaper alternatives beside them for comparison.
worker  ``processing.outbox_drain`` over pending batches, timed per step; then the
        Event insert of the same rows done four ways.

The figures are CPU microseconds (wall where it says so) on this machine;
bench/ingest.py measures the throughput these costs allow.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools import services  # noqa: E402

ORIGIN = "https://bench.example"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire_body(public_key: str, *, subjects: int, rng: random.Random) -> bytes:
    """A batch of 20 wire events like bench/ingest.py's Lua script sends."""
    import orjson

    now = datetime.now(UTC)
    events = []
    who = rng.randrange(subjects)  # a tracker's batch is one visitor's
    for _ in range(20):
        sku, roll = rng.randint(1, 5000), rng.randint(1, 100)

        def item(sku: int) -> dict[str, Any]:
            return {"item_id": f"sku-{sku}", "item_name": f"Item {sku}",
                    "item_category": f"cat-{sku % 40}", "price": 5 + sku % 95 + 0.5,
                    "quantity": 1 + sku % 3}

        if roll <= 70:
            name, items = "view_item", [item(sku)]
            params = {"engaged_ms": rng.randint(500, 60000), "scroll_pct": rng.randint(0, 100)}
        elif roll <= 90:
            name, items, params = "add_to_cart", [item(sku)], {"engaged_ms": 4000}
        else:
            name, items = "purchase", [item(sku), item(sku % 4999 + 1)]
            params = {"transaction_id": f"t_{uuid.uuid4().hex[:12]}", "value": 49.9,
                      "currency": "EUR"}
        events.append({
            "event_id": str(uuid.uuid4()), "name": name,
            "ts": iso(now - timedelta(milliseconds=rng.randint(0, 60_000))),
            "anon_id": f"a_p_{who}", "session_id": f"s_p_{who}",
            "page": {"url": f"https://bench.example/p/{sku}", "referrer": "",
                     "title": f"Item {sku}"},
            "context": {"device": "mobile", "viewport": "390x844", "locale": "en-GB",
                        "tz": "Europe/London"},
            "items": items, "params": params,
        })
    return orjson.dumps({"site": public_key, "sent_at": iso(now), "events": events})


def per_call(fn: Callable[[Any], Any], inputs: list[Any]) -> tuple[float, float]:
    """Mean (CPU, wall) microseconds of fn over the inputs."""
    cpu, wall = time.process_time(), time.perf_counter()
    for value in inputs:
        fn(value)
    n = len(inputs)
    return 1e6 * (time.process_time() - cpu) / n, 1e6 * (time.perf_counter() - wall) / n


# --- web --------------------------------------------------------------------


def profile_web(site: Any, bodies: list[bytes], *, cprofile: bool) -> None:
    import orjson
    import psycopg
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client, RequestFactory
    from django.utils import timezone

    from tracking import services as tracking_services
    from tracking.api import EventCollectApi
    from tracking.conf import tracking_settings as conf
    from tracking.models import RawBatch
    from tracking.validation import TimeWindow, json_depth_exceeds

    def window() -> TimeWindow:
        now = timezone.now()
        return TimeWindow(received_at=now, sent_at=now, max_future=conf.MAX_FUTURE,
                          max_age=conf.MAX_AGE, max_skew=conf.MAX_CLOCK_SKEW)

    payloads = [orjson.loads(b) for b in bodies]
    cleaned = [tracking_services.events_clean(site=site, events=p["events"], window=window())[0]
               for p in payloads]
    blob = (b"[" + b",".join(orjson.dumps(e) for _, e in cleaned[0]) + b"]").decode()
    now = timezone.now()
    db_url = os.environ["DATABASE_URL"]
    raw = psycopg.connect(db_url, autocommit=True)
    insert_sql = ("INSERT INTO tracking_rawbatch (site_id, source, received_at, sent_at, "
                  "user_agent, events, n_events, rejected, processed_at) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now()) RETURNING id")
    cache.add(tracking_services.PENDING_FLAG, 1, timeout=600)  # set, as under load
    factory = RequestFactory()
    view = EventCollectApi.as_view()
    client = Client(HTTP_HOST="127.0.0.1")

    def through_view(body: bytes) -> None:
        response = view(factory.post("/api/v1/collect", body, content_type="application/json",
                                     HTTP_ORIGIN=ORIGIN, HTTP_HOST="127.0.0.1"))
        assert response.status_code == 202, response.data

    def through_stack(body: bytes) -> None:
        response = client.post("/api/v1/collect", body, content_type="application/json",
                               HTTP_ORIGIN=ORIGIN)
        assert response.status_code == 202, response.content

    through_stack(bodies[0])  # warm: imports, connections, caches
    stages: list[tuple[str, Callable[[Any], Any], list[Any]]] = [
        ("orjson.loads of the body", orjson.loads, bodies),
        ("json_depth_exceeds (parser)", lambda b: json_depth_exceeds(b, conf.MAX_DEPTH),
         bodies),
        ("events_clean: validation + subject HMAC",
         lambda p: tracking_services.events_clean(site=site, events=p["events"],
                                                  window=window()), payloads),
        ("orjson.dumps of the 20 clean events",
         lambda c: b"[" + b",".join(orjson.dumps(e) for _, e in c) + b"]", cleaned),
        ("RawBatch.objects.create (ORM; commit)",
         lambda _: RawBatch.objects.create(site=site, source="browser", received_at=now,
                                           sent_at=now, user_agent="wrk", events=blob,
                                           n_events=20, rejected={}, processed_at=now),
         bodies),
        ("  alt: psycopg INSERT, server-side binding",
         lambda _: raw.execute(insert_sql, (site.pk, "browser", now, now, "wrk", blob, 20,
                                            psycopg.types.json.Jsonb({}))),
         bodies),
        ("outbox_signal: cache.add (flag set)", lambda _: tracking_services.outbox_signal(),
         bodies),
        ("  alt: one redis-py client, SET NX",
         lambda _: _redis().set("bench:flag", 1, nx=True, ex=600), bodies),
        ("connection health check (SELECT 1)", lambda _: connection.is_usable(), bodies),
        ("EventCollectApi alone (RequestFactory)", through_view, bodies),
        ("full Django stack (test Client)", through_stack, bodies),
        ("  Django hello view, full stack (GET)",
         lambda _: client.get("/bench/hello"), bodies),
    ]
    print(f"\n== web: CPU per collect request of 20 events ({len(bodies)} requests each, "
          f"in-process; middleware: {len(settings.MIDDLEWARE)} classes)")
    print(f"{'stage':<46}{'CPU us':>9}{'wall us':>9}{'% of full':>10}")
    results = []
    for label, fn, inputs in stages:
        cpu, wall = per_call(fn, inputs)
        results.append((label, cpu, wall))
    full = next(cpu for label, cpu, _ in results if label.startswith("full Django"))
    for label, cpu, wall in results:
        print(f"{label:<46}{cpu:>9.0f}{wall:>9.0f}{100 * cpu / full:>9.0f}%")
    view_cpu = next(cpu for label, cpu, _ in results if label.startswith("EventCollectApi"))
    print(f"{'middleware + handler (full - view)':<46}{full - view_cpu:>9.0f}{'':>9}"
          f"{100 * (full - view_cpu) / full:>9.0f}%")
    if cprofile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for body in bodies:
            through_stack(body)
        profiler.disable()
        print_profile(profiler, "full Django stack, collect", 25)
    raw.close()


_redis_client = None


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _redis_client


# --- worker -----------------------------------------------------------------


def pending_reset(limit: int) -> tuple[int, int]:
    """Exactly the first ``limit`` raw batches pending again; no events, no counts."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tracking_event, tracking_dailycount")
        cursor.execute("UPDATE tracking_rawbatch SET processed_at = now()")
        cursor.execute("UPDATE tracking_rawbatch SET processed_at = NULL WHERE id IN "
                       "(SELECT id FROM tracking_rawbatch ORDER BY id LIMIT %s)", [limit])
        cursor.execute("VACUUM ANALYZE tracking_rawbatch")
        cursor.execute("VACUUM ANALYZE tracking_event")
        cursor.execute("SELECT count(*), coalesce(sum(n_events), 0) FROM tracking_rawbatch "
                       "WHERE processed_at IS NULL")
        batches, events = cursor.fetchone()
    return batches, events


class StepTimer:
    """Wraps module functions to add up their wall and CPU time."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}
        self.undo: list[tuple[Any, str, Any]] = []

    def wrap(self, module: Any, name: str, label: str | None = None) -> None:
        original = getattr(module, name, None)
        if original is None:  # the code moved on: time what is there
            return
        totals = self.totals.setdefault(label or name, [0.0, 0.0, 0])

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                totals[0] += time.perf_counter() - wall
                totals[1] += time.process_time() - cpu
                totals[2] += 1

        setattr(module, name, timed)
        self.undo.append((module, name, original))

    def restore(self) -> None:
        for module, name, original in reversed(self.undo):
            setattr(module, name, original)


def profile_worker(batches: int, *, cprofile: bool) -> None:
    import orjson
    from django.db import connection, transaction

    from tracking import pipeline, processing
    from tracking.models import RawBatch

    n_batches, n_events = pending_reset(batches)
    timer = StepTimer()
    for name in ("_stored_event_ids", "_prior_events", "_events_insert", "_event_rows",
                 "daily_counts_add", "_site_batches_process"):
        timer.wrap(processing, name)
    for name in ("mark_duplicates", "mark_rate_bots", "assign_sessions", "mark_noise"):
        timer.wrap(pipeline, name, f"pipeline.{name}")
    timer.wrap(processing.orjson, "loads", "orjson.loads of batch events")
    for name in ("_events_insert_postgresql", "_events_insert_portable"):
        timer.wrap(processing, name, f"  {name} (the statement)")
    wall, cpu = time.perf_counter(), time.process_time()
    result = processing.outbox_drain(time_budget=600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timer.restore()
    print(f"\n== worker: outbox_drain of {n_batches} pending batches ({n_events} events), "
          f"in-process, step timers on (they add some overhead)")
    print(f"outcomes {dict(result.outcomes)}")
    print(f"total: wall {wall:.2f} s, CPU here {cpu:.2f} s -> {n_events / wall:,.0f} events/s; "
          f"{1e6 * wall / n_events:.0f} us wall and {1e6 * cpu / n_events:.0f} us CPU per event")
    print(f"{'step':<34}{'wall s':>8}{'% wall':>8}{'CPU s':>8}{'calls':>9}")
    for label, (w, c, calls) in sorted(timer.totals.items(), key=lambda kv: -kv[1][0]):
        print(f"{label:<34}{w:>8.2f}{100 * w / wall:>7.0f}%{c:>8.2f}{int(calls):>9}")
    print("  (_event_rows is a generator: its time is counted inside _events_insert)")

    pending_reset(batches)
    wall = time.perf_counter()
    result = processing.outbox_drain(time_budget=600)
    wall = time.perf_counter() - wall
    print(f"without timers: {wall:.2f} s -> {n_events / wall:,.0f} events/s")

    if cprofile:
        pending_reset(batches)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        processing.outbox_drain(time_budget=600)
        profiler.disable()
        print_profile(profiler, "outbox_drain", 30)

    # The Event insert of one drain transaction's rows, done four ways, each rolled back.
    pending_reset(batches)
    cands = []
    for batch in RawBatch.objects.filter(processed_at__isnull=True).order_by("id")[:200]:
        site_id = batch.site_id
        for event in orjson.loads(batch.events):
            cands.append(pipeline.Candidate(event=event, batch_id=batch.pk, source=batch.source,
                                            ts=event["ts"], subject=event["subject"],
                                            session="s" * 32))

    def rows() -> list[tuple[Any, ...]]:
        return [r for c in cands for r in processing._event_rows(site_id, c)]

    n_rows = len(rows())
    with connection.cursor() as cursor:  # outside the timed part: created once per session
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS bench_event_in AS SELECT "
                       f"{', '.join(processing._COLUMNS)} FROM tracking_event WITH NO DATA")
    print(f"\n== worker: the Event insert of one drain transaction (200 batches, "
          f"{len(cands)} events, {n_rows} rows), each way rolled back, best of 3")
    ways: list[tuple[str, Callable[[], Any]]] = [
        ("building the rows: _event_rows", rows),
        ("current: _events_insert (rows + statement)",
         lambda: processing._events_insert(site_id, cands)),
        ("  alt: rows + unnest, psycopg.Cursor, text", lambda: _insert_unnest(rows())),
        ("  alt: rows + unnest, psycopg.Cursor, binary",
         lambda: _insert_unnest(rows(), binary=True)),
        ("  alt: rows + COPY to temp + INSERT SELECT", lambda: _insert_copy(rows())),
    ]
    print(f"{'way':<46}{'wall ms':>9}{'CPU ms':>9}{'us/row':>8}")
    for label, fn in ways:
        best = None
        for _ in range(3):
            with transaction.atomic():
                sid = transaction.savepoint()
                w, c = time.perf_counter(), time.process_time()
                fn()
                w, c = time.perf_counter() - w, time.process_time() - c
                transaction.savepoint_rollback(sid)
            if best is None or w < best[0]:
                best = (w, c)
        print(f"{label:<46}{1e3 * best[0]:>9.1f}{1e3 * best[1]:>9.1f}"
              f"{1e6 * best[0] / n_rows:>8.1f}")
    connection.close()


_TYPES = ("bigint", "uuid", "smallint", "varchar", "varchar", "varchar", "varchar", "varchar",
          "timestamptz", "float8", "varchar", "int", "int", "smallint", "text", "varchar",
          "jsonb")


def _insert_unnest(rows: list[tuple[Any, ...]], *, binary: bool = False) -> int:
    """One INSERT ... SELECT FROM unnest(array per column) on a server-binding cursor.

    Django's connection makes ClientCursor its cursor_factory, so
    ``connection.connection.cursor()`` still binds on the client (arrays become
    escaped SQL literals, element by element in Python): psycopg.Cursor does not.
    """
    import psycopg
    from django.db import connection

    from tracking.processing import _COLUMNS

    columns = list(zip(*rows, strict=True))
    if binary:  # binary arrays: no per-element text escaping; JSON and UUIDs as text
        columns = [[None if v is None else str(v) for v in c] if t in ("uuid", "jsonb") else c
                   for c, t in zip(columns, _TYPES, strict=True)]
        types = ["text" if t in ("uuid", "jsonb") else t for t in _TYPES]
        casts = ", ".join(f"%b::{t}[]" for t in types)
        select = ", ".join(f"c{i}::{t}" if t in ("uuid", "jsonb") else f"c{i}"
                           for i, t in enumerate(_TYPES))
        alias = ", ".join(f"c{i}" for i in range(len(_TYPES)))
        sql = (f"INSERT INTO tracking_event ({', '.join(_COLUMNS)}) SELECT {select} "
               f"FROM unnest({casts}) AS t({alias}) "
               "ON CONFLICT (site_id, event_id, item_index) DO NOTHING "
               "RETURNING id, event_id, item_index")
        raw: psycopg.Connection = connection.connection
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, [list(c) for c in columns])
            return len(cursor.fetchall())
    casts = ", ".join(f"%s::{t}[]" for t in _TYPES)
    sql = (f"INSERT INTO tracking_event ({', '.join(_COLUMNS)}) SELECT * FROM unnest({casts}) "
           "ON CONFLICT (site_id, event_id, item_index) DO NOTHING "
           "RETURNING id, event_id, item_index")
    raw: psycopg.Connection = connection.connection
    with psycopg.Cursor(raw) as cursor:  # a plain (server-side binding) cursor
        cursor.execute(sql, [list(c) for c in columns])
        return len(cursor.fetchall())


def _insert_copy(rows: list[tuple[Any, ...]]) -> int:
    """COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT."""
    import psycopg
    from django.db import connection

    from tracking.processing import _COLUMNS

    raw: psycopg.Connection = connection.connection
    cols = ", ".join(_COLUMNS)
    with psycopg.Cursor(raw) as cursor:
        with cursor.copy(f"COPY bench_event_in ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO tracking_event ({cols}) SELECT {cols} FROM bench_event_in "
                       "ON CONFLICT (site_id, event_id, item_index) DO NOTHING "
                       "RETURNING id, event_id, item_index")
        returned = cursor.fetchall()
        cursor.execute("TRUNCATE bench_event_in")
        return len(returned)


def print_profile(profiler: cProfile.Profile, title: str, lines: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    print(f"\n== cProfile ({title}), by own time; cProfile inflates many small calls")
    text = out.getvalue()
    print(text[text.index("ncalls"):] if "ncalls" in text else text)


# --- main -------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500,
                        help="collect requests timed per web stage")
    parser.add_argument("--batches", type=int, default=2500,
                        help="pending batches (of 20 events) for the worker profile")
    parser.add_argument("--subjects", type=int, default=5000, help="distinct anon ids")
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile tables")
    args = parser.parse_args(argv)
    with services.running(durable=True) as service_env:
        os.environ.update(service_env)
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "bench.settings", "SECRET_KEY": secrets.token_urlsafe(40),
            "RECSITE_THROTTLE_KEY_RATE": "off", "RECSITE_THROTTLE_IP_RATE": "off",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        })
        import django

        django.setup()
        from django.core.management import call_command
        from django.utils import timezone

        from tracking.models import RawBatch
        from tracking.services import event_batch_ingest, site_create

        call_command("migrate", verbosity=0)
        site = site_create(name="Bench", origins=[ORIGIN], require_consent=False).site
        rng = random.Random(7)
        bodies = [wire_body(site.public_key, subjects=args.subjects, rng=rng)
                  for _ in range(args.requests)]
        print(f"body: {len(bodies[0]):,} bytes for 20 events")
        profile_web(site, bodies, cprofile=args.cprofile)

        import orjson

        RawBatch.objects.all().delete()
        for _ in range(args.batches):  # the batches the worker will drain
            body = wire_body(site.public_key, subjects=args.subjects, rng=rng)
            event_batch_ingest(site=site, payload=orjson.loads(body), received_at=timezone.now(),
                               source=RawBatch.Source.BROWSER, user_agent="wrk")
        profile_worker(args.batches, cprofile=args.cprofile)
        from django.db import connections

        connections.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
