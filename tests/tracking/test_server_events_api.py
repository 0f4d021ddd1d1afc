"""POST /api/v1/events: the site's backend, with the secret key."""

import pytest

from tests.conftest import make_event
from tracking.models import Event, RawBatch
from tracking.processing import outbox_drain


def test_secret_key_events_are_stored_as_server_sourced(consented_api):
    response = consented_api.server_events([make_event(name="purchase", anon_id=None,
                                                       user_id="u-1")])
    # The user has no consent record yet: the server is held to the same rule.
    assert response.status_code == 403
    consented_api.consent("a_visitor1", user_id="u-1")
    response = consented_api.server_events([make_event(name="purchase", anon_id=None,
                                                       user_id="u-1")])
    assert response.status_code == 202, response.content
    assert RawBatch.objects.get().source == "server"
    outbox_drain()
    event = Event.objects.get()
    assert event.source == "server" and event.user_subject == event.subject


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer sk_live_wrong", "Basic abc"])
def test_bad_secret_key_is_401(api, header):
    response = api.client.post("/api/v1/events", {"events": [make_event()]},
                               content_type="application/json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_key"


def test_public_key_is_not_a_secret_key(api, site):
    response = api.server_events([make_event()], key=site.public_key)
    assert response.status_code == 401


def test_server_events_need_no_origin(consented_api):
    assert consented_api.server_events([make_event()]).status_code == 202
