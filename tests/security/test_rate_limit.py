"""Rate limiting against a real server: gunicorn on loopback, PostgreSQL and Redis.

One site's key sent at ten times its quota is answered 429 with Retry-After within a
second, while another site's latency (p99) stays within 20 % of what it is alone. Each
client forging X-Forwarded-For still counts as one address.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from tests.security.load import Sample, paced, percentile
from tracking.services import site_create

ROOT = Path(__file__).resolve().parents[2]
QUOTA = 10  # requests per second per site key, for this server
SECONDS = 4.0  # per phase; PHASES phases of each kind, alternated
PHASES = 4
WORKERS = 4  # gunicorn's advice, twice the cores: one slow request does not hold the rest
VICTIM_RATE = 8.0  # the other site: under its quota


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(transactional_db) -> Iterator[str]:
    """gunicorn (sync workers) on the test database and Redis, with a small key quota."""
    if "postgres" not in os.environ.get("DATABASE_URL", "") or not os.environ.get("REDIS_URL"):
        pytest.fail("needs PostgreSQL and Redis: run it through scripts/test")
    db = connection.settings_dict
    port = free_port()
    env = {**os.environ, "RECSITE_THROTTLE_KEY_RATE": f"{QUOTA}/s",
           "RECSITE_THROTTLE_IP_RATE": "off",  # one loopback address for every client here
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "recsite.wsgi:application", "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gunicorn did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(15)


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def collect_request(public_key: str, origin: str) -> tuple[bytes, dict[str, str]]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {"event_id": str(uuid.uuid4()), "name": "page_view", "ts": now,
             "anon_id": "a_ratelimit-visitor-0001"}
    body = json.dumps({"site": public_key, "sent_at": now, "events": [event]}).encode()
    return body, {"Content-Type": "text/plain", "Origin": origin}


def noisy(url: str, body: bytes, headers: dict[str, str], rate: float) -> subprocess.Popen:
    """The load of the key over its quota, from another process."""
    args = json.dumps({"url": url, "body": body.decode(), "headers": headers, "rate": rate,
                       "seconds": SECONDS, "catch_up": True})
    return subprocess.Popen([sys.executable, "-m", "tests.security.load", args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


def test_a_key_over_its_quota_is_throttled_and_another_sites_latency_holds(server):
    flood = site_create(name="Flood", origins=["https://flood.example"],
                        require_consent=False).site
    calm = site_create(name="Calm", origins=["https://calm.example"],
                       require_consent=False).site
    collect = f"{server}/api/v1/collect"
    calm_body, calm_headers = collect_request(calm.public_key, "https://calm.example")
    flood_body, flood_headers = collect_request(flood.public_key, "https://flood.example")
    paced(url=collect, body=calm_body, headers=calm_headers, rate=VICTIM_RATE, seconds=1)
    time.sleep(1)  # the warm-up's window is over

    alone: list[Sample] = []
    beside: list[Sample] = []
    flooded: list[dict] = []
    for _ in range(PHASES):  # alternated, so drift in the machine's load hits both alike
        alone += paced(url=collect, body=calm_body, headers=calm_headers, rate=VICTIM_RATE,
                       seconds=SECONDS)
        proc = noisy(collect, flood_body, flood_headers, rate=10 * QUOTA)
        beside += paced(url=collect, body=calm_body, headers=calm_headers, rate=VICTIM_RATE,
                        seconds=SECONDS)
        out, _ = proc.communicate(timeout=60)
        run = json.loads(out)
        assert run, "the flood sent nothing"
        first_429 = min(s["started"] + s["seconds"] for s in run if s["status"] == 429)
        assert first_429 < 1.0, f"first 429 after {first_429:.2f} s"
        flooded += run

    statuses = [s["status"] for s in flooded]
    assert set(statuses) <= {202, 429}, set(statuses)
    throttled = [s for s in flooded if s["status"] == 429]
    assert len(throttled) >= 0.8 * len(flooded), (len(throttled), len(flooded))
    assert {s["retry_after"] for s in throttled} == {"1"}  # the window's end, in whole seconds
    windows = {int(s["wall"]) for s in flooded}  # the one-second windows it spanned
    assert statuses.count(202) <= QUOTA * (len(windows) + 1), (statuses.count(202), windows)
    assert len(flooded) >= 0.8 * 10 * QUOTA * len(windows), "the flood fell short of 10x"
    assert {s.status for s in alone + beside} == {202}

    figures = {name: (percentile([s.seconds * 1000 for s in samples], 0.5),
                      percentile([s.seconds * 1000 for s in samples], 0.99))
               for name, samples in (("alone", alone), ("beside the flood", beside))}
    shown = ", ".join(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
                      for name, (p50, p99) in figures.items())
    print(f"calm site's collect latency, {len(alone)} requests each: {shown}")  # pytest -rP
    assert figures["beside the flood"][1] <= 1.2 * figures["alone"][1], shown


def test_forging_x_forwarded_for_does_not_dodge_the_per_ip_throttle(settings, site_keys):
    """With no trusted proxy configured the header is ignored: one address, one budget."""
    settings.RECSITE = {**settings.RECSITE, "THROTTLE_IP_RATE": "5/m",
                        "THROTTLE_KEY_RATE": "off"}
    client = Client(HTTP_HOST="localhost")
    body, _ = collect_request(site_keys.site.public_key, "https://shop.example")
    answers = [client.post("/api/v1/collect", body, content_type="text/plain",
                           HTTP_ORIGIN="https://shop.example",
                           HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
               for n in range(8)]
    assert answers.count(429) == 3, answers
