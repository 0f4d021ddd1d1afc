"""Shared fixtures: sites, a browser-like API client, consent, and a real Celery worker."""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from django.test import Client

from recsite.celery import app as celery_app
from tracking.authentication import site_cache_clear
from tracking.services import SiteCreated, site_create

ORIGIN = "https://shop.example"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return iso(datetime.now(UTC) + delta)


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid wire event; keyword arguments replace or add fields (None removes one)."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "name": "view_item",
        "ts": now_iso(),
        "anon_id": "a_visitor1",
        "session_id": "s_1",
        "page": {"url": "https://shop.example/p/1", "referrer": "", "title": "Lamp"},
        "context": {"device": "mobile", "locale": "en-GB"},
        "items": [{"item_id": "sku-1", "item_name": "Lamp", "price": 19.9, "quantity": 1}],
        "params": {"engaged_ms": 5400},
    }
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


class BrowserApi:
    """Posts to the public endpoints as the tracker does, from an allowed origin."""

    def __init__(self, created: SiteCreated) -> None:
        self.site = created.site
        self.secret_key = created.secret_key
        self.client = Client(HTTP_HOST="localhost")

    def post(self, path: str, body: Any, *, content_type: str = "application/json",
             origin: str | None = ORIGIN, **headers: str):
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        if origin is not None:
            headers["HTTP_ORIGIN"] = origin
        return self.client.post(path, data, content_type=content_type, **headers)

    def collect(self, events: list[dict[str, Any]], **kwargs: Any):
        body = {"site": self.site.public_key, "sent_at": now_iso(), "events": events}
        return self.post("/api/v1/collect", body, **kwargs)

    def server_events(self, events: list[dict[str, Any]], *, key: str | None = None):
        return self.client.post(
            "/api/v1/events", json.dumps({"events": events}), content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key or self.secret_key}",
        )

    def consent(self, anon_id: str = "a_visitor1", *, analytics: bool = True,
                personalization: bool = False, **extra: Any):
        body = {"site": self.site.public_key, "anon_id": anon_id,
                "purposes": {"analytics": analytics, "personalization": personalization},
                "banner_version": "2026-11-01", "source": "banner", **extra}
        return self.post("/api/v1/consent", body)


def cache_clear() -> None:
    """Empty the cache but not the Redis database: Celery's queues live there too."""
    client = getattr(cache, "_cache", None)
    if hasattr(client, "get_client"):
        redis = client.get_client(write=True)
        keys = list(redis.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            redis.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _isolated_state(request) -> Iterator[None]:
    """Fresh cache (throttle counters, flags) and eager tasks unless a test wants the worker."""
    cache_clear()
    site_cache_clear()
    eager = request.node.get_closest_marker("worker") is None
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def wsgi_in_test_transaction() -> Iterator[None]:
    """Let raw WSGI calls run inside the test's transaction.

    Django closes the database connection at the start and end of every request
    when it is in a transaction it did not open; its own test client switches that
    off the same way. Schemathesis calls the WSGI application directly.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def site_keys(db) -> SiteCreated:
    return site_create(name="Shop", origins=[ORIGIN])


@pytest.fixture
def site(site_keys):
    return site_keys.site


@pytest.fixture
def api(site_keys) -> BrowserApi:
    return BrowserApi(site_keys)


@pytest.fixture
def consented_api(api) -> BrowserApi:
    assert api.consent("a_visitor1").status_code == 201
    return api


@pytest.fixture(scope="module")
def _celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process on the test database and the test Redis."""
    if not os.environ.get("REDIS_URL") or "postgres" not in os.environ.get("DATABASE_URL", ""):
        pytest.fail("the worker tests need DATABASE_URL (PostgreSQL) and REDIS_URL: "
                    "run them through scripts/test")
    from django.db import connection

    db = connection.settings_dict
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "CONN_MAX_AGE": "0"}
    celery_app.control.purge()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "recsite-test-worker.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "recsite", "worker", "-Q", "ingest,default",
         "--pool", "solo", "-l", "warning", "--without-gossip", "--without-mingle",
         "--hostname", f"test-{os.getpid()}@localhost"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not celery_app.control.ping(timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"the Celery worker did not start; see {log.name}")
    yield proc
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def worker_quiet(*, timeout: float = 30.0) -> bool:
    """True once no task is queued, reserved or running (twice in a row, 0.2 s apart)."""
    from recsite.celery import Queue

    redis = celery_app.connection_for_write().default_channel.client
    inspect = celery_app.control.inspect(timeout=1.0, limit=1)  # one worker: its answer suffices

    def idle() -> bool:
        if any(redis.llen(queue) for queue in Queue):
            return False
        busy = [inspect.active() or {}, inspect.reserved() or {}]
        return not any(tasks for answer in busy for tasks in answer.values())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idle():
            time.sleep(0.2)
            if idle():
                return True
        time.sleep(0.1)
    return False


@pytest.fixture
def celery_worker(_celery_worker_process, transactional_db) -> Iterator[subprocess.Popen]:
    """The worker, for one test; its work is finished before the database is emptied.

    A task still running (a profile update after events_cleaned, say) would hold
    locks that the flush between tests then deadlocks on.
    """
    yield _celery_worker_process
    assert worker_quiet(), "the Celery worker was still busy 30 s after the test"


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1) -> bool:
    """Poll until predicate() is true; False if the timeout passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
