"""The suite really runs on the services the test command started."""

import os

from django.core.cache import cache
from django.db import connection


def test_runs_on_postgresql_and_redis_when_configured(db):
    expected_db = "postgresql" if "postgres" in os.environ.get("DATABASE_URL", "") else "sqlite"
    assert connection.vendor == expected_db
    if os.environ.get("REDIS_URL"):
        from django.core.cache import caches

        assert type(caches["default"]).__name__ == "RedisCache"
        cache.set("harness", 7)
        assert cache.get("harness") == 7


def test_raw_batches_are_compressed_with_lz4_on_postgresql(db):
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT attcompression FROM pg_attribute WHERE attname = 'events' "
                       "AND attrelid = 'tracking_rawbatch'::regclass")
        assert cursor.fetchone()[0] == "l"
