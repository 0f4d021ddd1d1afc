"""Collect counts both throttles and reads the visitors' consent in ONE Redis command."""

import time

import pytest
from django.core.cache import cache

from tests.conftest import make_event
from tracking import services
from tracking.services import consent_cache_key, subject_hash


def commands_of(action, monkeypatch) -> list[str]:
    """The commands the cache's Redis client sends (each one round trip) during action."""
    client = cache._cache.get_client(write=True)
    sent: list[str] = []
    send = client.execute_command

    def spy(*args, **options):
        sent.append(str(args[0]).lower())
        return send(*args, **options)

    monkeypatch.setattr(client, "execute_command", spy)
    action()
    monkeypatch.undo()
    return sent


@pytest.fixture
def warm(consented_api):
    """A first batch: fills the consent cache and sets the outbox flag."""
    assert consented_api.collect([make_event()]).status_code == 202
    return consented_api


def test_a_batch_costs_one_redis_command(warm, site, monkeypatch):
    monkeypatch.setattr(services, "_flag_seen_at", time.monotonic() + 60)  # a drain is queued
    commands = commands_of(lambda: warm.collect([make_event(), make_event()]), monkeypatch)

    assert commands == ["evalsha"]
    subject = subject_hash(site=site, kind="a", raw_id="a_visitor1")
    assert cache.get(consent_cache_key(site.pk, subject)) == 1


def test_the_throttles_counted_in_that_command_still_refuse(warm, settings):
    settings.RECSITE = {"THROTTLE_IP_RATE": "off", "THROTTLE_KEY_RATE": "2/m"}
    assert warm.collect([make_event()]).status_code == 202
    assert warm.collect([make_event()]).status_code == 202
    response = warm.collect([make_event()])
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


def test_a_visitor_the_prefetch_did_not_guess_is_read_as_usual(consented_api, monkeypatch):
    """An anon id sent as a number (dataLayer ids often are) is not read off the raw
    batch, so the consent check reads it on its own, and the answer is still right."""
    assert consented_api.consent("12345").status_code == 201
    response = None

    def collect() -> None:
        nonlocal response
        response = consented_api.collect([make_event(anon_id=12345)])

    commands = commands_of(collect, monkeypatch)
    assert response.status_code == 202, response.content
    assert commands[:2] == ["evalsha", "mget"]  # throttles (and no guess), then the read
    assert consented_api.collect([make_event(anon_id=54321)]).status_code == 403
