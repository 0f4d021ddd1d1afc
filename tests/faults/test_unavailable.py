"""Outages seen by the API: PostgreSQL refusing connections, Redis gone.

The outages are real, not mocked: Django's connection (or cache) is pointed at
a loopback port where nothing listens, so every call fails as it does when the
server is down. ``python -m devtools.faults`` stops the real servers under load.
"""

import contextlib
import socket
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from recsite.middleware import unavailable_service
from tests.conftest import ORIGIN, make_event
from tracking.models import ConsentReceipt, Event, RawBatch
from tracking.processing import outbox_drain

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    """A loopback port nobody listens on (taken from the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database_down() -> Iterator[None]:
    """PostgreSQL unreachable for this thread's connection meanwhile."""
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = closed_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port


def redis_down():
    return override_settings(CACHES={"default": {
        "BACKEND": "recsite.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        "KEY_PREFIX": "recsite"}})


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["error"] == "unavailable" and body["retry_after"] == 5
    assert "nothing was stored" in body["detail"]


def test_collect_answers_503_with_retry_after_while_postgresql_is_down(consented_api):
    assert consented_api.collect([make_event()]).status_code == 202  # caches warm, as in use
    with database_down():
        response = consented_api.collect([make_event()])
    assert_unavailable(response)
    # The browser can read the answer (and its Retry-After) only with the CORS headers.
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in response["Access-Control-Expose-Headers"]


def test_a_batch_answered_503_is_not_stored_and_its_retry_is_stored_once(consented_api, site):
    event = make_event()
    with database_down():
        assert_unavailable(consented_api.collect([event]))
    assert not RawBatch.objects.exists()

    assert consented_api.collect([event]).status_code == 202
    outbox_drain()
    assert Event.objects.filter(site=site, event_id=event["event_id"]).count() == 1


def test_the_other_write_endpoints_answer_503_too(api):
    with database_down():
        consent = api.consent("a_visitor2")
        server_events = api.server_events([make_event()])
        # A view on DRF's full dispatch (not the lean path of collect).
        items = api.client.put("/api/v1/items", '{"items": []}', content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {api.secret_key}")
    for response in (consent, server_events, items):
        assert_unavailable(response)


def test_collect_keeps_answering_202_without_redis_and_the_batch_waits_in_the_outbox(
        consented_api, site):
    event = make_event()
    with redis_down():
        response = consented_api.collect([event])
        stranger = consented_api.collect([make_event(anon_id="a_stranger")])

    assert response.status_code == 202 and response.json()["accepted"] == 1
    # Consent is still checked without the cache: the database answers.
    assert stranger.status_code == 403 and stranger.json()["error"] == "no_consent"
    assert RawBatch.objects.get().processed_at is None  # no drain queued: the sweeper's job
    assert outbox_drain().stored == 1
    assert Event.objects.filter(site=site, event_id=event["event_id"]).exists()


def test_a_consent_choice_is_refused_while_its_cached_state_cannot_be_replaced(api):
    # A withdrawal that left "granted" in the cache would let events in: refuse it instead.
    with redis_down():
        response = api.consent("a_visitor1", analytics=False)
    assert_unavailable(response)
    assert not ConsentReceipt.objects.exists()


def test_only_outages_are_unavailable():
    from django.db import IntegrityError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError

    assert unavailable_service(OperationalError("server closed the connection")) == "database"
    assert unavailable_service(RedisConnectionError("refused")) == "cache"
    assert unavailable_service(IntegrityError("duplicate key")) is None
    assert unavailable_service(ResponseError("WRONGTYPE")) is None
    assert unavailable_service(ValueError("bad")) is None
