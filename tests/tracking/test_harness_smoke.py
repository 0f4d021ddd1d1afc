from django.db import connection

from tracking.models import Event
from tracking.processing import outbox_drain


def test_runs_on_postgresql_when_configured(db):
    import os

    expected = "postgresql" if "postgres" in os.environ.get("DATABASE_URL", "") else "sqlite"
    assert connection.vendor == expected


def test_collect_then_drain_stores_event(consented_api):
    response = consented_api.collect([{**__import__("tests.conftest").conftest.make_event()}])
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "rejected": []}
    result = outbox_drain()
    assert result.stored == 1
    assert Event.objects.count() == 1
