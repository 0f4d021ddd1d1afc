"""Query parameters: the plain-dict parse of the GET endpoints reads what request.GET reads,
and the cache field names an answer's parameters whatever their order."""

import pytest
from django.core.exceptions import TooManyFieldsSent
from django.test import RequestFactory

from recommend.params import cache_field, query_params

QUERIES = [
    "",
    "site=pk_live_1&anon_id=a_0123456789abcdef&placement=home&limit=6",
    "placement=home&placement=cart",  # repeated: the last, as request.GET.get gives
    "limit=&item=&flag",  # blank values kept
    "item=caf%C3%A9+cr%C3%A8me&filter=%7B%22price%22%3A%7B%22between%22%3A%5B1%2C2%5D%7D%7D",
    "item=%FF%FE&x=%",  # not UTF-8, a stray %
    "a=1;b=2&c=d=e",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_parse_reads_what_request_get_reads(query):
    request = RequestFactory().get("/api/v1/recommendations?" + query)
    parsed = query_params(request)
    assert parsed == {key: request.GET[key] for key in request.GET}
    assert list(parsed) == list(request.GET)


def test_raw_utf8_in_the_query_string_is_read_as_request_get_reads_it():
    request = RequestFactory().get("/api/v1/recommendations")
    request.META["QUERY_STRING"] = "item=café".encode().decode("iso-8859-1")  # as WSGI gives
    assert query_params(request) == {"item": "café"} == request.GET.dict()


def test_too_many_parameters_are_refused_as_request_get_refuses_them(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    request = RequestFactory().get("/api/v1/recommendations?a=1&b=2&c=3&d=4")
    with pytest.raises(TooManyFieldsSent):
        query_params(request)


def test_the_cache_field_names_the_answers_parameters_only():
    field = cache_field({"placement": "home", "limit": "6", "site": "pk_1"})
    assert field == cache_field({"limit": "6", "anon_id": "a_other", "placement": "home"})
    assert field == cache_field({"placement": "home", "limit": "6", "item": ""})  # "" unset
    assert field != cache_field({"placement": "home", "limit": "7"})
    assert field != cache_field({"placement": "home", "limit": "6"}, extra="similar")
    # a value cannot pass for another parameter: the parts are not joined by a character
    assert cache_field({"item": "x", "hour": "5"}) != cache_field({"item": "x\x1fhour=5"})
