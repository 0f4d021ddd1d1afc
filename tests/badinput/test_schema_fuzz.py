"""Schemathesis over every operation of /api/schema/, through the WSGI application.

Each operation gets at least 1,000 generated requests (the coverage phase's boundary
cases, then random ones), schema-valid (positive) and schema-violating (negative)
mixed, with working credentials filled in so that the
requests get past authentication: the site's public key in the body or query and an
allowed Origin, the secret key as a Bearer token. Every response must be documented
for its operation, match its schema, never be a 5xx, and reject every negative
request with a 4xx (or, for the batch endpoints, a 202 that lists a rejected event).
"""

import json
import os
import re
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings

from recsite.wsgi import application
from tests.badinput.conftest import rolled_back
from tests.conftest import ORIGIN
from tracking.services import SiteCreated

# The floor; BADINPUT_EXAMPLES lowers it for a quick local run, never in CI.
MIN_EXAMPLES = int(os.environ.get("BADINPUT_EXAMPLES", 1000))
# Random examples per operation, on top of the coverage phase's. The batch endpoints'
# coverage phase alone brings some 950 (and a random batch costs ten times a GET).
RANDOM_EXAMPLES = {"POST /api/v1/collect": 300, "POST /api/v1/events": 300}
CONFIG = schemathesis.Config.from_dict({
    "generation": {"mode": "all", "max-examples": MIN_EXAMPLES, "database": "none"},
    "operations": [{"include-name": name, "generation": {"max-examples": n * MIN_EXAMPLES // 1000}}
                   for name, n in RANDOM_EXAMPLES.items()],
})


def served_schema() -> dict:
    """What GET /api/schema/ serves, built as its view builds it: fetching it here, at
    collection, would touch the database (the CORS check reads the sites) before it exists."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
schema.app, schema.location = application, "/api/schema/"  # as from_wsgi sets them
checks = schema.config.checks
# A batch endpoint answers an invalid event with 202 and that event listed as rejected.
checks.negative_data_rejection.expected_statuses = [
    *checks.negative_data_rejection.expected_statuses, "202", "413"]
# A schema-valid request may still break a rule no OpenAPI schema can state; such a 400
# must name a field matching one of these (positive_refusals_name_a_rule checks it).
checks.positive_data_acceptance.expected_statuses = [
    *checks.positive_data_acceptance.expected_statuses, "400"]
RULES_BEYOND_THE_SCHEMA = {
    # an anon_id or a user_id (a user id such as "undefined" counts as none); a Global
    # Privacy Control receipt grants no purpose; a time must lie within years 1..9999 in UTC
    "POST /api/v1/consent": {"anon_id", "purposes", "ts"},
    # the batch's sent_at too (0001-01-01T00:00:20+00:02 is in year 0 in UTC); a bad event
    # alone is listed in a 202, so a 400 is only ever about the envelope
    "POST /api/v1/collect": {"sent_at"},
    "POST /api/v1/events": {"sent_at"},
    # filter and boost are JSON in a string; after is a rec_token we signed; a personalized
    # list needs the visitor's anon_id (or the rs_aid cookie)
    "GET /api/v1/recommendations": {"filter", "boost", "after", "anon_id"},
    "GET /api/v1/items/{item_id}/similar": {"filter", "boost", "after"},
    "GET /api/v1/users/{user_id}/recommendations": {"filter", "boost", "after"},
    # a user id such as "undefined" or "null" is no user id (the export names the request
    # parameter when either is wrong)
    "GET /api/v1/subjects/{subject_id}/profile": {"id"},
    "DELETE /api/v1/subjects/{subject_id}": {"id"},
    "GET /api/v1/subjects/{subject_id}/export": {"id", "request"},
    # attribute names are letters, digits, _ . - (OpenAPI 3.0 cannot constrain keys)
    "PUT /api/v1/items": {r"items\[\d+\]\.attributes\..*"},
}

BATCH_OPERATIONS = {"POST /api/v1/collect", "POST /api/v1/events"}


def positive_refusals_name_a_rule(ctx, response, case) -> None:
    """A schema-valid request refused with a 400 must have broken a rule the schema cannot
    state, and the answer must say which."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code == 400:
        field = response.json().get("field")
        rules = RULES_BEYOND_THE_SCHEMA.get(case.operation.label, set())
        assert field is not None and any(re.fullmatch(rule, field, re.DOTALL)
                                         for rule in rules), \
            f"a schema-valid request was refused: {response.text}"


def negative_batch_lists_a_rejection(ctx, response, case) -> None:
    """A schema-violating batch answered 202 must name the rejected event."""
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return
    if case.operation.label in BATCH_OPERATIONS and response.status_code == 202:
        assert response.json()["rejected"], "a schema-violating batch was accepted whole"


def _plausible_key(value: object) -> bool:
    """A string the schema allows as a key (a longer one is a negative case: kept)."""
    return isinstance(value, str) and len(value) <= 64


def authorize(case, keys: SiteCreated) -> dict[str, str]:
    """Put working credentials where the request has a place for them; the headers to send.

    Only a credential the generator made a string is replaced: where a negative request
    left it out or gave it the wrong type, that stays the request's fault.
    """
    if isinstance(case.body, dict) and _plausible_key(case.body.get("site")):
        case.body["site"] = keys.site.public_key
    if isinstance(case.query, dict) and _plausible_key(case.query.get("site")):
        case.query["site"] = keys.site.public_key
    return {"Origin": ORIGIN, "Authorization": f"Bearer {keys.secret_key}"}


@pytest.fixture
def example_counts(request) -> Iterator[Counter]:
    """Counts the examples run per generation mode; fails the test under MIN_EXAMPLES."""
    counts: Counter = Counter()
    yield counts
    total = counts["positive"] + counts["negative"]
    assert total >= MIN_EXAMPLES, f"only {total} examples ran: {dict(counts)}"
    assert counts["negative"] > 0 and counts["positive"] > 0, dict(counts)
    print(f"\n{request.node.name}: {total} examples, {dict(counts)}")


@schema.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation(case, open_site, wsgi_in_test_transaction, example_counts):
    headers = authorize(case, open_site)
    with rolled_back():
        case.call_and_validate(headers=headers,
                               additional_checks=[negative_batch_lists_a_rejection,
                                                  positive_refusals_name_a_rule])
    example_counts[case.meta.generation.mode.value] += 1
    example_counts[case.meta.phase.name.value] += 1


def test_the_fuzzed_schema_is_the_served_one(db):
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    assert json.loads(response.content) == served_schema()
