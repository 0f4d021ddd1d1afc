"""The filter and booster syntax: parsed into predicates, never evaluated as code."""

import time
from dataclasses import dataclass, field

import pytest

from recommend.query import QueryError, boosters_parse, filter_parse


@dataclass
class Thing:
    item_id: str = "sku-1"
    title: str = "Brass desk lamp"
    category: str = "lamps"
    price: float | None = 19.9
    currency: str = "EUR"
    available: bool = True
    tags: tuple = ("brass", "desk")
    created: float = field(default_factory=lambda: time.time() - 3 * 86400)
    attributes: dict = field(default_factory=lambda: {"color": "gold", "watts": 40})


@pytest.mark.parametrize(("query", "expected"), [
    ({"category": "lamps"}, True),
    ({"category": {"ne": "lamps"}}, False),
    ({"category": {"in": ["lamps", "chairs"]}}, True),
    ({"category": {"nin": ["lamps"]}}, False),
    ({"price": {"between": [10, 20]}}, True),
    ({"price": {"gt": 19.9}}, False),
    ({"price": {"lte": 19.9}, "currency": "EUR"}, True),
    ({"attributes.color": "gold"}, True),
    ({"attributes.watts": {"gte": 60}}, False),
    ({"attributes.missing": {"exists": False}}, True),
    ({"tags": "brass"}, True),
    ({"tags": {"contains": "desk"}}, True),
    ({"title": {"contains": "DESK"}}, True),
    ({"created": {"within_days": 7}}, True),
    ({"created": {"within_days": 1}}, False),
    ({"or": [{"category": "chairs"}, {"price": {"lt": 20}}]}, True),
    ({"and": [{"category": "lamps"}, {"not": {"available": True}}]}, False),
])
def test_filters_match_as_written(query, expected):
    assert filter_parse(query)(Thing()) is expected


def test_an_item_without_a_price_matches_no_price_range():
    assert filter_parse({"price": {"between": [0, 1e9]}})(Thing(price=None)) is False


@pytest.mark.parametrize(("query", "field"), [
    ("category", "filter"),
    ({}, "filter"),
    ({"__import__": "os"}, "filter.__import__"),
    ({"price": {"between": [20, 10]}}, "filter.price.between"),
    ({"price": {"gt": "ten"}}, "filter.price.gt"),
    ({"price": {"eval": 1}}, "filter.price.eval"),
    ({"category": {"in": "lamps"}}, "filter.category.in"),
    ({"title": {"within_days": 3}}, "filter.title.within_days"),
    ({"or": []}, "filter.or"),
    ({"not": {"not": {"not": {"not": {"not": {"not": {"not": {"category": "x"}}}}}}}},
     "filter.not.not.not.not.not.not.not"),
    ({"category": {"eq": ["a"]}}, "filter.category.eq"),
])
def test_invalid_filters_say_where(query, field):
    with pytest.raises(QueryError) as raised:
        filter_parse(query)
    assert raised.value.field == field


def test_a_query_has_a_size_bound():
    with pytest.raises(QueryError, match="more than"):
        filter_parse({"or": [{"category": str(i)} for i in range(80)]})


def test_boosters():
    boosters = boosters_parse([{"if": {"category": "lamps"}, "factor": 2},
                               {"if": {"price": {"gt": 100}}, "factor": 0.5}])
    assert [b.factor for b in boosters if b.matches(Thing())] == [2.0]
    for bad in ({"if": {"category": "x"}}, {"if": {"category": "x"}, "factor": 0},
                {"if": {"category": "x"}, "factor": float("inf")}, [1]):
        with pytest.raises(QueryError):
            boosters_parse(bad)
