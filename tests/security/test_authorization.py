"""The authorisation matrix: two sites x two subjects x every read endpoint x every wrong
credential. Each cell must be refused (4xx) or, where the credential names a different
subject by design (another site's key answers for that site's own visitors), answer with
nothing of the victim. Positive controls prove the leak detector sees the victim's data
when the right credential is used.
"""

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.core import signing
from django.core.management import call_command
from django.test import Client, override_settings

from recommend import catalog, recommending, services, serving
from recommend.tokens import SALT, SUBJECT_CHARS, RecToken, token_read, token_sign
from recsite.celery import app as celery_app
from tests.recommend.conftest import shop_catalog
from tests.recommend.test_training import GROUPS, behaviour
from tracking.authentication import site_cache_clear
from tracking.models import Site
from tracking.services import site_create, site_rotate_secret, subject_hash

pytestmark = pytest.mark.django_db

ORIGINS = {"A": "https://a.example", "B": "https://b.example"}
# The same raw user ids on both sites: a site's key must never reach the other's people.
USER_IDS = {1: "user-1", 2: "customer-000000000002"}  # the second passes as an anon id


@dataclass
class Person:
    site_name: str
    number: int
    anon_id: str
    user_id: str
    viewed_titles: list[str]
    subjects: set[str] = field(default_factory=set)  # anon and user subject hashes
    token: str = ""  # a rec_token the person was served

    @property
    def label(self) -> str:
        return f"{self.site_name}{self.number}"


@dataclass
class SiteKeys:
    site: Site
    secret_key: str
    revoked_key: str  # the secret key before a rotation


@dataclass
class World:
    sites: dict[str, SiteKeys]
    people: dict[str, Person]

    def other_site(self, person: Person) -> SiteKeys:
        return self.sites["B" if person.site_name == "A" else "A"]

    def own_site(self, person: Person) -> SiteKeys:
        return self.sites[person.site_name]

    def attacker(self, person: Person) -> Person:
        return self.people[f"{person.site_name}{3 - person.number}"]


def browser(origin: str) -> Client:
    return Client(HTTP_HOST="localhost", HTTP_ORIGIN=origin)


def _person_events(keys: SiteKeys, person: Person, items: list[str]) -> None:
    client = browser(ORIGINS[person.site_name])
    consent = {"site": keys.site.public_key, "anon_id": person.anon_id,
               "user_id": person.user_id, "banner_version": "v1", "source": "banner",
               "purposes": {"analytics": True, "personalization": True}}
    assert client.post("/api/v1/consent", json.dumps(consent),
                       content_type="application/json").status_code == 201
    now = datetime.now(UTC)
    events = [{"event_id": secrets.token_hex(16), "name": "view_item",
               "ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "anon_id": person.anon_id, "user_id": person.user_id,
               "items": [{"item_id": item}]} for item in items]
    body = {"site": keys.site.public_key, "sent_at": events[-1]["ts"], "events": events}
    answer = client.post("/api/v1/collect", json.dumps(body), content_type="application/json",
                         HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari")
    assert answer.status_code == 202 and answer.json()["accepted"] == len(items), answer.content


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    """Sites A and B, each with a trained model and people 1 and 2 (consented, with views
    of their own group of items), built once for the module and removed after it."""
    model_dir = Path(tmp_path_factory.mktemp("models"))
    overrides = override_settings(RECSITE={**settings.RECSITE, "MODEL_DIR": str(model_dir),
                                           "THROTTLE_IP_RATE": "off",
                                           "THROTTLE_KEY_RATE": "off"})
    overrides.enable()
    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, True
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()
    with django_db_blocker.unblock():
        sites: dict[str, SiteKeys] = {}
        for name, origin in ORIGINS.items():
            created = site_create(name=f"Site {name}", origins=[origin])
            shop_catalog(created.site)
            behaviour(created.site)
            services.site_train(site=created.site)
            sites[name] = SiteKeys(site=created.site, revoked_key=created.secret_key,
                                   secret_key=site_rotate_secret(site=created.site))
        people: dict[str, Person] = {}
        for group, (name, number) in enumerate([("A", 1), ("A", 2), ("B", 1), ("B", 2)]):
            keys = sites[name]
            person = Person(site_name=name, number=number,
                            anon_id=f"a_{secrets.token_hex(12)}", user_id=USER_IDS[number],
                            viewed_titles=[])
            items = GROUPS[group][:2]
            _person_events(keys, person, items)
            person.viewed_titles = [keys.site.items.get(external_id=i).title for i in items]
            person.subjects = {subject_hash(site=keys.site, kind="a", raw_id=person.anon_id),
                               subject_hash(site=keys.site, kind="u", raw_id=person.user_id)}
            people[person.label] = person
        try:
            yield World(sites=sites, people=people)
        finally:
            # As after a transactional test: consent receipts are append-only, not deleted.
            call_command("flush", verbosity=0, interactive=False)
            overrides.disable()
            celery_app.conf.task_always_eager = eager
            serving.loaded_models_clear()
            catalog.catalogs_clear()
            recommending.memos_clear()
            site_cache_clear()


# --- what counts as the victim's data ---------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def _token_body(text: str) -> Any:
    try:
        return signing.loads(text, salt=SALT)
    except signing.BadSignature:
        return None


def leaks(response, victim: Person) -> list[str]:
    """What of the victim the answer holds: subject hashes (whole or as a token's prefix),
    the raw anon id, or a reason naming an item they viewed."""
    try:
        body = response.json()
    except ValueError:
        body = response.content.decode(errors="replace")
    texts = list(_strings(body))
    if isinstance(body, dict) and isinstance(body.get("rec_token"), str):
        texts += list(_strings(_token_body(body["rec_token"])))
    found = []
    markers = {victim.anon_id} | victim.subjects | {s[:SUBJECT_CHARS] for s in victim.subjects}
    for text in texts:
        found += [f"{marker!r} in {text[:60]!r}" for marker in markers if marker in text]
    reasons = [item.get("reason") or {} for item in body.get("items", [])] \
        if isinstance(body, dict) else []
    for reason in reasons:
        found += [f"reason {reason.get('text')!r}" for title in victim.viewed_titles
                  if title in str(reason.get("text", ""))]
    return found


# --- the requests ---------------------------------------------------------------------


def get(path: str, *, origin: str | None = None, bearer: str | None = None,
        **params: str):
    headers = {}
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    if bearer is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    query = f"?{urlencode(params)}" if params else ""
    return Client(HTTP_HOST="localhost").get(f"{path}{query}", **headers)


def recs(keys: SiteKeys, victim: Person, **params: str):
    return get("/api/v1/recommendations", origin=ORIGINS[keys.site.name[-1]],
               site=keys.site.public_key, placement="home", **params)


def similar(keys: SiteKeys, victim: Person, **params: str):
    item = GROUPS[0][3]
    return get(f"/api/v1/items/{item}/similar", origin=ORIGINS[keys.site.name[-1]],
               site=keys.site.public_key, **params)


def expired_token(world: World, victim: Person) -> str:
    """The victim's own served token, re-signed as issued 31 days ago (past the 30-day
    limit): what an old page or a log would hold."""
    token = token_read(victim.token)
    assert token is not None
    old = RecToken(placement=token.placement, subject=token.subject, items=token.items,
                   issued=int(time.time()) - 31 * 86400)
    return token_sign(old)


Attack = Callable[[World, Person], Any]

# (endpoint, wrong credential) -> the request the attacker makes.
ATTACKS: dict[tuple[str, str], Attack] = {
    # GET /recommendations: public key, for the caller's own anon id only.
    ("recommendations", "public key + the victim's user id"): lambda w, v: recs(
        w.own_site(v), v, anon_id=w.attacker(v).anon_id, user_id=v.user_id),
    ("recommendations", "public key + the victim's user id given as an anon id"): lambda w, v:
        recs(w.own_site(v), v, anon_id=v.user_id),
    ("recommendations", "another site's public key + the victim's anon id"): lambda w, v: recs(
        w.other_site(v), v, anon_id=v.anon_id),
    ("recommendations", "public key from a foreign origin"): lambda w, v: get(
        "/api/v1/recommendations", origin="https://evil.example",
        site=w.own_site(v).site.public_key, placement="home", anon_id=v.anon_id),
    ("recommendations", "the victim's expired rec_token"): lambda w, v: recs(
        w.own_site(v), v, anon_id=w.attacker(v).anon_id, after=expired_token(w, v)),
    ("recommendations", "the victim's rec_token, another visitor's anon id"): lambda w, v:
        recs(w.own_site(v), v, anon_id=w.attacker(v).anon_id, after=v.token),
    ("recommendations", "no key"): lambda w, v: get(
        "/api/v1/recommendations", placement="home", anon_id=v.anon_id),
    # GET /items/{id}/similar: public key, personalized for the caller's own anon id.
    ("similar", "public key + the victim's user id"): lambda w, v: similar(
        w.own_site(v), v, anon_id=w.attacker(v).anon_id, user_id=v.user_id),
    ("similar", "another site's public key + the victim's anon id"): lambda w, v: similar(
        w.other_site(v), v, anon_id=v.anon_id),
    ("similar", "the victim's expired rec_token"): lambda w, v: similar(
        w.own_site(v), v, anon_id=w.attacker(v).anon_id, placement="home",
        after=expired_token(w, v)),
    # GET /users/{user_id}/recommendations: the site's secret key.
    ("user recommendations", "no key"): lambda w, v: get(
        f"/api/v1/users/{v.user_id}/recommendations", placement="home"),
    ("user recommendations", "the site's public key"): lambda w, v: get(
        f"/api/v1/users/{v.user_id}/recommendations", placement="home",
        bearer=w.own_site(v).site.public_key),
    ("user recommendations", "another site's secret key"): lambda w, v: get(
        f"/api/v1/users/{v.user_id}/recommendations", placement="home",
        bearer=w.other_site(v).secret_key),
    ("user recommendations", "the site's revoked secret key"): lambda w, v: get(
        f"/api/v1/users/{v.user_id}/recommendations", placement="home",
        bearer=w.own_site(v).revoked_key),
    ("user recommendations", "an arbitrary secret key"): lambda w, v: get(
        f"/api/v1/users/{v.user_id}/recommendations", placement="home",
        bearer="sk_live_" + secrets.token_urlsafe(32)),
    # GET /subjects/{id}/profile: the site's secret key.
    ("profile", "no key"): lambda w, v: get(f"/api/v1/subjects/{v.user_id}/profile"),
    ("profile", "the site's public key"): lambda w, v: get(
        f"/api/v1/subjects/{v.user_id}/profile", bearer=w.own_site(v).site.public_key),
    ("profile", "another site's secret key"): lambda w, v: get(
        f"/api/v1/subjects/{v.user_id}/profile", bearer=w.other_site(v).secret_key),
    ("profile", "another site's secret key, the victim's anon id"): lambda w, v: get(
        f"/api/v1/subjects/{v.anon_id}/profile", type="anon",
        bearer=w.other_site(v).secret_key),
    ("profile", "the site's revoked secret key"): lambda w, v: get(
        f"/api/v1/subjects/{v.user_id}/profile", bearer=w.own_site(v).revoked_key),
    # Consent is written by the banner, never read back through the public key.
    ("consent", "public key + the victim's anon id"): lambda w, v: get(
        "/api/v1/consent", origin=ORIGINS[v.site_name], site=w.own_site(v).site.public_key,
        anon_id=v.anon_id),
    # GET /subjects/{id}/export: the site's secret key (a 404 while it is not served).
    ("export", "no key"): lambda w, v: get(f"/api/v1/subjects/{v.user_id}/export"),
    ("export", "the site's public key"): lambda w, v: get(
        f"/api/v1/subjects/{v.user_id}/export", bearer=w.own_site(v).site.public_key),
    ("export", "another site's secret key"): lambda w, v: get(
        f"/api/v1/subjects/{v.user_id}/export", bearer=w.other_site(v).secret_key),
    ("export", "the site's revoked secret key"): lambda w, v: get(
        f"/api/v1/subjects/{v.user_id}/export", bearer=w.own_site(v).revoked_key),
}
# Cells where the credential is valid for someone else by design, so an answer may come,
# about that someone (another site's own user of that id, a visitor of that anon id).
ANSWERED_AS_ANOTHER = {
    ("recommendations", "public key + the victim's user id given as an anon id"),
    ("recommendations", "another site's public key + the victim's anon id"),
    ("similar", "another site's public key + the victim's anon id"),
    ("user recommendations", "another site's secret key"),
    ("profile", "another site's secret key"),
    ("profile", "another site's secret key, the victim's anon id"),
    ("export", "another site's secret key"),
}
VICTIMS = ["A1", "A2", "B1", "B2"]


@pytest.fixture(scope="module")
def served(world: World) -> World:
    """Each person's own list, asked with the right credentials (their token is kept)."""
    for person in world.people.values():
        answer = recs(world.own_site(person), person, anon_id=person.anon_id)
        assert answer.status_code == 200, answer.content
        person.token = answer.json()["rec_token"]
    return world


@pytest.mark.parametrize("victim_label", VICTIMS)
@pytest.mark.parametrize(("endpoint", "credential"), list(ATTACKS))
def test_a_wrong_credential_gets_nothing_of_the_victim(served, victim_label, endpoint,
                                                       credential):
    victim = served.people[victim_label]
    response = ATTACKS[endpoint, credential](served, victim)
    assert response.status_code < 500, response.content
    assert leaks(response, victim) == []
    if (endpoint, credential) in ANSWERED_AS_ANOTHER:
        assert response.status_code < 300 or response.status_code in (400, 404), \
            response.content
    else:
        assert 400 <= response.status_code < 500, response.content
        body = response.json()
        assert set(body) <= {"error", "detail", "field", "retry_after"}, body


@pytest.mark.parametrize("victim_label", VICTIMS)
def test_the_right_credentials_do_read_the_victims_data(served, victim_label):
    """The positive control: the detector finds the victim in their own answers."""
    victim = served.people[victim_label]
    keys = served.own_site(victim)
    own = recs(keys, victim, anon_id=victim.anon_id)
    assert own.status_code == 200 and leaks(own, victim), own.content
    assert any(item["reason"]["kind"] == "because_viewed" for item in own.json()["items"])
    user = get(f"/api/v1/users/{victim.user_id}/recommendations", placement="home",
               bearer=keys.secret_key)
    assert user.status_code == 200 and leaks(user, victim), user.content
    profile = get(f"/api/v1/subjects/{victim.user_id}/profile", bearer=keys.secret_key)
    assert profile.status_code == 200 and leaks(profile, victim), profile.content
    # Another visitor's id on the same site names another person: their own answer.
    attacker = served.attacker(victim)
    theirs = recs(keys, victim, anon_id=attacker.anon_id)
    assert theirs.status_code == 200 and leaks(theirs, victim) == []
    assert leaks(theirs, attacker)
