"""The recommendation endpoints: who may read what, errors as JSON, parameters, catalog."""

import json
from urllib.parse import quote

import pytest

from recommend.tokens import token_read
from tests.recommend.conftest import VISITOR, visit
from tests.recommend.test_training import GROUPS
from tracking.models import Item

pytestmark = pytest.mark.django_db
ORIGIN = "https://shop.example"


def get(api, path, **params):
    query = "&".join(f"{key}={quote(str(value))}" for key, value in params.items())
    return api.client.get(f"{path}?{query}", HTTP_ORIGIN=ORIGIN)


def public(api, **params):
    params = {"site": api.site.public_key, "anon_id": VISITOR, "placement": "home", **params}
    return get(api, "/api/v1/recommendations", **params)


def test_the_visitor_reads_their_own_recommendations(api, trained):
    api.consent(VISITOR, personalization=True)
    visit(api.site, [GROUPS[2][0], GROUPS[2][1]])
    body = public(api, limit=3).json()
    assert [item["item_id"] for item in body["items"]] and \
        {item["item_id"] for item in body["items"]} <= set(GROUPS[2])
    first = body["items"][0]
    assert first["reason"]["kind"] == "because_viewed" and first["title"] and first["url"]
    assert token_read(body["rec_token"]).items == tuple(i["item_id"] for i in body["items"])
    assert body["model_version"] == trained.pk and body["more"] is True


def test_without_personalization_consent_the_list_reads_nothing_of_the_visitor(api, trained):
    api.consent(VISITOR, personalization=False)
    visit(api.site, [GROUPS[2][0], GROUPS[2][1]])
    kinds = {item["reason"]["kind"] for item in public(api, limit=4).json()["items"]}
    assert kinds <= {"trending", "popular"}


def test_the_public_key_never_reads_a_user(api, trained):
    response = public(api, user_id="42")
    assert response.status_code == 403
    assert response.json()["error"] == "secret_key_required"
    assert response.json()["field"] == "user_id"
    other = get(api, "/api/v1/users/42/recommendations", placement="home")
    assert other.status_code == 401 and other.json()["error"] == "unknown_key"
    wrong = api.client.get("/api/v1/users/42/recommendations?placement=home",
                           HTTP_AUTHORIZATION=f"Bearer {api.site.public_key}")
    assert wrong.status_code == 401


def test_the_secret_key_reads_a_user_and_their_merged_visits(api, trained):
    from tracking.services import subject_hash

    api.consent(VISITOR, user_id="user-42", personalization=True)
    user = subject_hash(site=api.site, kind="u", raw_id="user-42")
    visit(api.site, [GROUPS[3][0], GROUPS[3][1]], anon_id="user-42-device")
    from tracking.models import Event

    Event.objects.filter(site=api.site).update(subject=user)  # events stored after login
    response = api.client.get("/api/v1/users/user-42/recommendations?placement=home&limit=3",
                              HTTP_AUTHORIZATION=f"Bearer {api.secret_key}")
    assert response.status_code == 200, response.content
    assert {item["item_id"] for item in response.json()["items"]} <= set(GROUPS[3])


@pytest.mark.parametrize(("params", "field"), [
    ({"anon_id": "a_1"}, "anon_id"),
    ({"anon_id": ""}, "anon_id"),
    ({"placement": "no spaces"}, "placement"),
    ({"limit": "0"}, "limit"),
    ({"limit": "lots"}, "limit"),
    ({"diversity": "1.5"}, "diversity"),
    ({"diversity": "nan"}, "diversity"),
    ({"filter": "{not json"}, "filter"),
    ({"filter": json.dumps({"price": {"between": [5]}})}, "filter.price.between"),
    ({"filter": json.dumps({"__class__": 1})}, "filter.__class__"),
    ({"boost": json.dumps({"if": {"category": "x"}, "factor": -1})}, "boost.factor"),
    ({"after": "forged-token"}, "after"),
    ({"hour": "24"}, "hour"),
    ({"surprise": "1"}, "surprise"),
])
def test_bad_parameters_are_a_400_naming_the_field(api, trained, params, field):
    response = public(api, **params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid" and body["field"] == field and body["detail"]


def test_unknown_key_and_foreign_origin(api, trained):
    assert get(api, "/api/v1/recommendations", site="pk_live_nope", anon_id=VISITOR,
               placement="home").status_code == 401
    foreign = api.client.get(f"/api/v1/recommendations?site={api.site.public_key}"
                             f"&anon_id={VISITOR}&placement=home", HTTP_ORIGIN="https://evil.example")
    assert foreign.status_code == 403 and foreign.json()["error"] == "origin_not_allowed"


def test_the_visitor_id_may_come_from_the_trackers_cookie(api, trained):
    api.client.cookies["rs_aid"] = VISITOR
    response = get(api, "/api/v1/recommendations", site=api.site.public_key, placement="home")
    assert response.status_code == 200
    assert token_read(response.json()["rec_token"]).subject


def test_filters_and_boosters_shape_the_list(api, trained):
    visit(api.site, [GROUPS[0][0], GROUPS[1][0]])
    flt = json.dumps({"category": {"in": ["lamps", "chairs"]}, "price": {"gte": 10}})
    items = public(api, limit=10, filter=flt).json()["items"]
    assert items and all(i["category"] in ("lamps", "chairs") and i["price"] >= 10 for i in items)
    boost = json.dumps({"if": {"category": "chairs"}, "factor": 50})
    boosted = public(api, limit=3, boost=boost, personalized=0).json()["items"]
    assert {i["category"] for i in boosted} == {"chairs"}


def test_next_items_for_infinite_scroll(api, trained):
    first = public(api, limit=5).json()
    second = public(api, limit=5, after=first["rec_token"]).json()
    ids = [i["item_id"] for i in first["items"]] + [i["item_id"] for i in second["items"]]
    assert len(ids) == len(set(ids)) == 10
    assert token_read(second["rec_token"]).earlier == tuple(ids[:5])
    other = public(api, placement="product", after=first["rec_token"])
    assert other.status_code == 400 and other.json()["field"] == "after"


def test_similar_items_endpoint(api, trained):
    response = get(api, f"/api/v1/items/{GROUPS[1][0]}/similar", site=api.site.public_key,
                   limit=3)
    assert response.status_code == 200
    items = response.json()["items"]
    assert items and {i["item_id"] for i in items} <= set(GROUPS[1][1:])
    assert items[0]["reason"]["kind"] == "similar_item"


def test_catalog_upsert(api, trained):
    def put(body, key=api.secret_key):
        return api.client.put("/api/v1/items", json.dumps(body), content_type="application/json",
                              HTTP_AUTHORIZATION=f"Bearer {key}")

    response = put({"items": [
        {"item_id": "new-1", "title": "Brass lamp", "category": "lamps", "price": 12.5,
         "currency": "eur", "url": "https://shop.example/p/new-1", "tags": ["brass"],
         "attributes": {"color": "gold"}},
        {"item_id": GROUPS[0][0], "price": 99.0}]})
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 1, "updated": 1, "unavailable": 0}
    new = Item.objects.get(site=api.site, external_id="new-1")
    assert new.currency == "EUR" and new.attributes == {"color": "gold"}
    old = Item.objects.get(site=api.site, external_id=GROUPS[0][0])
    assert old.price == 99.0 and old.title  # fields left out keep their values
    bad = put({"items": [{"item_id": "x", "price": "free"}]})
    assert bad.status_code == 400 and bad.json()["field"] == "items[0].price"
    assert put({"items": [{"title": "no id"}]}).json()["field"] == "items[0].item_id"
    assert put({"items": []}).status_code == 400
    assert put({"items": [{"item_id": "x"}]}, key="sk_live_nope").status_code == 401
    assert api.client.put("/api/v1/items", "[", content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {api.secret_key}").status_code == 400


def test_the_schema_documents_the_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/recommendations", "/api/v1/items/{item_id}/similar",
                 "/api/v1/users/{user_id}/recommendations", "/api/v1/items"):
        assert path in schema["paths"]


@pytest.mark.parametrize("setting", ["THROTTLE_IP_RATE", "THROTTLE_KEY_RATE"])
def test_throttled_in_the_same_round_trip_as_the_cache(api, trained, settings, setting):
    settings.RECSITE = {**settings.RECSITE, setting: "3/min"}
    codes = [public(api).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = public(api)
    assert throttled.json()["error"] == "throttled" and int(throttled["Retry-After"]) > 0


def test_without_redis_the_same_contract_on_djangos_cache(api, trained, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.RECSITE = {**settings.RECSITE, "THROTTLE_IP_RATE": "3/min"}
    first = public(api).json()
    assert public(api).json()["rec_token"] == first["rec_token"]  # cached
    assert public(api).status_code == 200 and public(api).status_code == 429
