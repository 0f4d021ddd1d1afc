"""Event values from integer and decimal prices in one batch (a float8 array on PostgreSQL)."""

import pytest

from tests.conftest import make_event
from tracking.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_integer_and_decimal_prices_in_one_batch_are_stored(consented_api, site):
    events = [make_event(items=[{"item_id": "a", "price": 20, "quantity": 2}]),
              make_event(items=[{"item_id": "b", "price": 4.5}])]
    assert consented_api.collect(events).status_code == 202
    values = dict(Event.objects.filter(site=site).values_list("item_id", "value"))
    assert values == {"a": 40.0, "b": 4.5}
