"""POST /api/v1/collect: the envelope, each bad input, limits at limit-1 and limit+1."""

import json

import pytest
from django.test import Client

from tests.conftest import ORIGIN, make_event, now_iso
from tracking.conf import tracking_settings
from tracking.models import DailyCount, Event, RawBatch
from tracking.processing import outbox_drain

LIMIT = 256 * 1024


def small_event(i: int = 0) -> dict:
    return {"event_id": f"00000000-0000-4000-8000-{i:012d}", "name": "page_view",
            "ts": now_iso(), "anon_id": "a_visitor1"}


def padded_body(site_key: str, size: int) -> bytes:
    """A valid batch padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps({"site": site_key, "events": [small_event()]}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert data["error"] == code, data
    assert data["detail"]
    return data


def test_accepts_a_batch_and_stores_one_raw_batch(consented_api):
    events = [make_event(), make_event(name="add_to_cart")]
    response = consented_api.collect(events)
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": []}
    batch = RawBatch.objects.get()
    assert batch.n_events == 2 and batch.processed_at is None
    stored = json.loads(batch.events)
    # Raw ids never reach the database: only the keyed-hash subject does.
    assert "anon_id" not in stored[0] and "a_visitor1" not in batch.events
    assert len(stored[0]["subject"]) == 32


def test_text_plain_is_json_too(consented_api):
    response = consented_api.collect([make_event()], content_type="text/plain;charset=UTF-8")
    assert response.status_code == 202
    assert response.json()["accepted"] == 1


def test_per_event_rejections_keep_the_valid_events(consented_api):
    events = [make_event(), make_event(event_id="x"), make_event(), make_event(ts="soon")]
    data = consented_api.collect(events).json()
    assert data["accepted"] == 2
    assert [(r["index"], r["reason"], r["field"]) for r in data["rejected"]] == [
        (1, "invalid", "event_id"), (3, "invalid", "ts")]
    outbox_drain()
    assert Event.objects.filter(item_index=0).count() == 2


def test_malformed_json_is_400(api):
    data = assert_error(api.post("/api/v1/collect", b'{"site": '), 400, "malformed")
    assert "line 1" in data["detail"]


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"12", b"null"])
def test_body_must_be_an_object(api, body):
    assert_error(api.post("/api/v1/collect", body), 400, "malformed")


def test_empty_body_is_400(api):
    assert_error(api.post("/api/v1/collect", b""), 400, "malformed")


def test_lone_surrogate_reads_as_the_replacement_character(consented_api, site):
    # Half an emoji: what JSON.stringify sends for a string cut by UTF-16 units.
    body = json.dumps({"site": site.public_key,
                       "events": [make_event(page={"title": "Lamp \ud83d"})]})
    assert "\\ud83d" in body
    assert consented_api.post("/api/v1/collect", body).json()["accepted"] == 1
    outbox_drain()
    assert Event.objects.get().context["page"]["title"] == "Lamp \ufffd"


def test_invalid_utf8_is_400(api, site):
    body = b'{"site": "' + site.public_key.encode() + b'", "events": ["\xff"]}'
    assert_error(api.post("/api/v1/collect", body), 400, "malformed")


def test_nul_reads_as_the_replacement_character(consented_api):
    data = consented_api.collect([make_event(params={"q": "a\u0000b"})]).json()
    assert data == {"accepted": 1, "rejected": []}
    outbox_drain()  # PostgreSQL would refuse a NUL in text or jsonb: none reaches it
    assert Event.objects.get().context["params"] == {"q": "a\ufffdb"}


def test_nesting_limit_minus_one_and_plus_one(consented_api, site):
    limit = tracking_settings.MAX_DEPTH

    def nested(depth: int) -> dict:
        # envelope(1) > events(2) > event(3) > params(4) > value(5...)
        value: object = 1
        for _ in range(depth - 4):
            value = [value]
        event = make_event(params={"v": value})
        return {"site": site.public_key, "events": [event]}

    ok = consented_api.post("/api/v1/collect", nested(limit))
    assert ok.status_code == 202  # parsed; the event itself is rejected as nested too deeply
    assert ok.json()["rejected"][0]["field"].startswith("params.v")
    assert_error(consented_api.post("/api/v1/collect", nested(limit + 1)), 400, "malformed")


def test_absurd_nesting_is_400_not_500(api):
    assert_error(api.post("/api/v1/collect", b"[" * 200_000 + b"]" * 200_000), 413, "too_large")
    assert_error(api.post("/api/v1/collect", b'{"a":' * 40_000 + b"1" + b"}" * 40_000), 400,
                 "malformed")


def test_body_size_at_limit_and_over(consented_api, site):
    at_limit = padded_body(site.public_key, LIMIT)
    assert len(at_limit) == LIMIT
    assert consented_api.post("/api/v1/collect", at_limit).status_code == 202
    over = padded_body(site.public_key, LIMIT + 1)
    assert_error(consented_api.post("/api/v1/collect", over), 413, "too_large")


def test_body_over_djangos_own_upload_limit_is_still_json_413(consented_api, site, settings):
    # Django answers an HTML 400 past DATA_UPLOAD_MAX_MEMORY_SIZE: our parser must come first.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert consented_api.post("/api/v1/collect", padded_body(site.public_key, 5000)
                              ).status_code == 202
    assert_error(consented_api.post("/api/v1/collect", padded_body(site.public_key, LIMIT + 10)),
                 413, "too_large")


def test_event_count_at_limit_and_over(consented_api):
    at_limit = [small_event(i) for i in range(500)]
    response = consented_api.collect(at_limit)
    assert response.status_code == 202 and response.json()["accepted"] == 500
    assert_error(consented_api.collect([small_event(i) for i in range(501)]), 413, "too_large")
    assert RawBatch.objects.count() == 1  # the rejected envelope stored nothing


def test_single_event_over_size_is_rejected_alone(consented_api, settings):
    settings.RECSITE = {"MAX_EVENT_BYTES": 2000}
    big = make_event(params={f"k{i}": "x" * 100 for i in range(30)})
    data = consented_api.collect([big, make_event()]).json()
    assert data["accepted"] == 1
    assert data["rejected"] == [{"index": 0, "reason": "too_large", "field": "event",
                                 "detail": data["rejected"][0]["detail"]}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": "x"}, "events"),
        ({"events": [{}], "sent_at": "later"}, "sent_at"),
        ({"events": [{}], "extra": 1}, "extra"),
    ],
)
def test_envelope_errors_name_the_field(api, site, body, field):
    data = assert_error(api.post("/api/v1/collect", {"site": site.public_key, **body}), 400,
                        "invalid")
    assert data["field"] == field


@pytest.mark.parametrize("key", [None, "", "pk_live_nope", 17, "x" * 100])
def test_unknown_site_key_is_401(api, key):
    body = {"events": [make_event()]}
    if key is not None:
        body["site"] = key
    assert_error(api.post("/api/v1/collect", body), 401, "unknown_key")


def test_origin_not_allowed_is_403(consented_api):
    assert_error(consented_api.collect([make_event()], origin="https://evil.example"), 403,
                 "origin_not_allowed")
    assert_error(consented_api.collect([make_event()], origin=None), 403, "origin_not_allowed")
    assert not RawBatch.objects.exists()


def test_unsupported_media_type_is_415(api, site):
    body = json.dumps({"site": site.public_key, "events": [make_event()]})
    assert_error(api.post("/api/v1/collect", body, content_type="application/xml"), 415,
                 "unsupported_media_type")


def test_wrong_method_is_405_json(api):
    response = api.client.get("/api/v1/collect")
    assert_error(response, 405, "method_not_allowed")


def test_preflight_allows_a_site_origin_only(api):
    ok = api.client.options("/api/v1/collect", HTTP_ORIGIN="https://shop.example",
                            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "content-type" in ok["Access-Control-Allow-Headers"]
    other = api.client.options("/api/v1/collect", HTTP_ORIGIN="https://evil.example",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in other


def test_answers_carry_cors_headers_for_the_site_origin(consented_api):
    response = consented_api.collect([make_event()])
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"


def test_no_consent_rejects_events(api):
    data = api.collect([make_event(anon_id="a_other"), make_event(anon_id="a_visitor1")])
    assert_error(data, 403, "no_consent")  # nobody in the batch has consented
    api.consent("a_visitor1", analytics=True)
    data = api.collect([make_event(anon_id="a_other"), make_event(anon_id="a_visitor1")]).json()
    assert data["accepted"] == 1
    assert data["rejected"][0]["index"] == 0 and data["rejected"][0]["reason"] == "no_consent"


def test_withdrawn_consent_stops_collection(api):
    api.consent("a_visitor1", analytics=True)
    assert api.collect([make_event()]).status_code == 202
    api.consent("a_visitor1", analytics=False, personalization=True)
    assert_error(api.collect([make_event()]), 403, "no_consent")


def test_site_without_consent_requirement_stores_all(api, site):
    site.require_consent = False
    site.save()
    assert api.collect([make_event(anon_id="a_new")]).json()["accepted"] == 1


def test_rejections_are_counted_per_day(consented_api):
    consented_api.collect([make_event(), make_event(name="Bad"), make_event(anon_id="a_x")])
    outbox_drain()
    counts = dict(DailyCount.objects.values_list("outcome", "count"))
    assert counts["accepted"] == 1
    assert counts["rejected_invalid"] == 1
    assert counts["rejected_no_consent"] == 1


def test_throttle_per_ip_answers_429_with_retry_after(consented_api, settings):
    settings.RECSITE = {"THROTTLE_IP_RATE": "3/m", "THROTTLE_KEY_RATE": "off"}
    codes = [consented_api.collect([make_event()]).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    response = consented_api.collect([make_event()])
    data = assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert data["retry_after"] == int(response["Retry-After"])


def test_throttle_per_site_key(consented_api, settings):
    settings.RECSITE = {"THROTTLE_IP_RATE": "off", "THROTTLE_KEY_RATE": "2/m"}
    codes = [consented_api.collect([make_event()]).status_code for _ in range(3)]
    assert codes == [202, 202, 429]


def test_an_unexpected_error_in_the_lean_path_is_a_logged_json_500(consented_api, monkeypatch,
                                                                    caplog):
    """Not client input: a bug. It must reach Django's 500 handler, not vanish or leak."""
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("tracking.api.event_batch_ingest", broken)
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    body = json.dumps({"site": consented_api.site.public_key, "events": [make_event()]})
    response = client.post("/api/v1/collect", body, content_type="application/json",
                           HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "RuntimeError: a bug" in caplog.text
