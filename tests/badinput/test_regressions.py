"""Bugs the bad-input suite found, each pinned by the smallest request that showed it."""

import json
import re

import pytest
from django.test import Client

from tests.badinput.test_caps import event, post, refused, rejection
from tests.conftest import ORIGIN
from tracking.models import Event
from tracking.processing import outbox_drain


def stored_event() -> Event:
    outbox_drain()
    return Event.objects.get()


def test_an_emoji_cut_in_half_keeps_the_batch(open_site):
    """The tracker cuts strings by UTF-16 units, which can leave half an emoji: the batch
    was refused whole (400) and, never retried on a 400, lost."""
    sent = event(page={"title": "Lamp \ud83d"}, context={"note": "\udc00 low first"})
    body = json.dumps({"site": open_site.site.public_key, "events": [sent]}).encode()
    assert b"\\ud83d" in body
    response = post(open_site, body=body)
    assert response.status_code == 202 and response.json()["accepted"] == 1
    stored = stored_event()
    assert stored.context["page"]["title"] == "Lamp \ufffd"
    assert stored.context["note"] == "\ufffd low first"


def test_a_surrogate_pair_written_as_escapes_is_one_character(open_site):
    body = json.dumps({"site": open_site.site.public_key,
                       "events": [event(context={"note": "\ud83d\ude00 \ud83d"})]}).encode()
    assert post(open_site, body=body).status_code == 202
    assert stored_event().context["note"] == "\U0001f600 \ufffd"


def test_nul_reads_as_the_replacement_character(open_site):
    """PostgreSQL refuses NUL in text and jsonb; it used to cost the whole event."""
    response = post(open_site, [event(params={"q": "a\u0000b"}, context={"k\u0000": 1})])
    # The key is no key once NUL is replaced: that event is refused, naming it.
    assert rejection(response)[:2] == ("invalid", "context.k\ufffd")
    assert post(open_site, [event(params={"q": "a\u0000b"})]).json()["accepted"] == 1
    assert stored_event().context["params"] == {"q": "a\ufffdb"}


@pytest.mark.parametrize("site_key", ["pk_\u0000", "\ud800"])
def test_unstorable_text_in_the_site_key_is_401_not_500(open_site, site_key):
    body = json.dumps({"site": site_key, "events": [event()]}).encode()
    refused(post(open_site, body=body), 401, "unknown_key")


@pytest.mark.parametrize(("body", "status", "code"), [
    (b'{"site": "\\ud800", "events": [NaN]}', 400, "malformed"),
    (b'{"site": "\\ud800", "events": [1.5e]}', 400, "malformed"),
    (b'{"site": "\\ud800", "x": "\xff"}', 400, "malformed"),
    (b'["\\ud800"]', 400, "malformed"),
    (b'{"a": "\\ud800", "b": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "malformed"),
])
def test_lone_surrogate_bodies_keep_the_json_rules(open_site, body, status, code):
    response = Client().post("/api/v1/collect", body, content_type="text/plain",
                             HTTP_ORIGIN=ORIGIN)
    refused(response, status, code)


@pytest.mark.parametrize(("sent", "field"), [
    (event(name="view_item\n"), "name"),
    (event(params={"note\n": 1}), "params.note\n"),
    (event(context={"device\n": "mobile"}), "context.device\n"),
])
def test_a_trailing_newline_is_no_name_or_key(open_site, sent, field):
    """``re.match`` with ``$`` let "view_item\\n" through as an event name and a key."""
    assert rejection(post(open_site, [sent]))[:2] == ("invalid", field)


@pytest.mark.parametrize("key", ["page", "params", "item", "client_session"])
def test_context_keys_the_stored_context_uses_are_refused(open_site, key):
    """They were overwritten by (or, without items, read as) the event's own fields: a
    string under context.item or context.params broke the profile update later."""
    sent = event(context={key: "mine"}, items=[{"item_id": "1"}])
    assert rejection(post(open_site, [sent]))[:2] == ("invalid", f"context.{key}")


@pytest.mark.parametrize(("sent_at", "ts"), [
    ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),  # shifted past year 9999
    ("9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z"),  # shifted before year 1
])
def test_times_shifted_past_the_calendar_are_refused_not_500(open_site, sent_at, ts):
    reason, field, detail = rejection(post(open_site, [event(ts=ts)], sent_at=sent_at))
    assert (reason, field) == ("invalid", "ts")
    assert "years 1 to 9999" in detail


def test_sent_at_in_year_zero_utc_is_400_not_500(open_site):
    data = refused(post(open_site, [event()], sent_at="0001-01-01T00:00:00+01:00"), 400,
                   "invalid")
    assert data["field"] == "sent_at"


def test_a_huge_numeric_user_id_is_no_user_not_a_400(open_site):
    """1e300 is a number the schema allows; its 301 digits made the consent a 400."""
    body = {"site": open_site.site.public_key, "anon_id": "a_visitor1", "user_id": 1e300,
            "purposes": {"analytics": True}}
    response = post(open_site, body=json.dumps(body).encode(), path="/api/v1/consent")
    assert response.status_code == 201, response.content


def test_an_empty_item_parameter_is_unset_like_the_others(open_site):
    response = Client().get("/api/v1/recommendations", {
        "site": open_site.site.public_key, "placement": "home", "personalized": "0",
        "item": "", "limit": ""}, HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200, response.content


def test_a_catalog_url_with_a_trailing_newline_is_refused(open_site):
    body = {"items": [{"item_id": "1", "url": "https://shop.example/p/1\n"}]}
    response = Client().put("/api/v1/items", json.dumps(body), content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {open_site.secret_key}")
    assert refused(response, 400, "invalid")["field"] == "items[0].url"


def test_an_empty_personalized_parameter_is_unset(open_site):
    response = Client().get("/api/v1/users/u1/recommendations",
                            {"placement": "home", "personalized": ""},
                            HTTP_AUTHORIZATION=f"Bearer {open_site.secret_key}")
    assert response.status_code == 200, response.content


def test_a_catalog_url_with_a_control_character_is_refused_as_the_schema_says(open_site):
    """The schema's pattern said ECMA's \\S, which takes \\x1f; the server's \\S does not."""
    from recommend.serializers import URL_PATTERN

    url = "https://shop.example/\x1f"
    assert not re.fullmatch(URL_PATTERN, url)
    body = {"items": [{"item_id": "1", "url": url}]}
    response = Client().put("/api/v1/items", json.dumps(body), content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {open_site.secret_key}")
    assert refused(response, 400, "invalid")["field"] == "items[0].url"


def test_integers_past_64_bits_read_as_orjson_reads_them(open_site):
    """orjson reads them as floats; the fallback for lone surrogates must read them alike."""
    for note in ("x", "\ud800"):
        sent = event(anon_id="ANON", context={"note": note})
        body = json.dumps({"site": open_site.site.public_key, "events": [sent]})
        body = body.replace('"ANON"', "123456789012345678901234567890")
        reason, field, detail = rejection(post(open_site, body=body.encode()))
        assert (reason, field, detail) == ("invalid", "anon_id", "must be a string, not a number")


def test_an_export_of_a_non_ascii_id_points_to_a_url(open_site):
    """The Location of a pending export held the raw path: a MIME-encoded word, or a line
    break (U+0085) that the WSGI server refused."""
    response = Client().get("/api/v1/subjects/%C2%85%C4%80/export", {"type": "anon"},
                            HTTP_AUTHORIZATION=f"Bearer {open_site.secret_key}")
    assert response.status_code == 202, response.content
    assert response["Location"].startswith("/api/v1/subjects/%C2%85%C4%80/export?request=")
