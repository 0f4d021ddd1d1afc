"""recsite.cache.RedisCache: Django's Redis cache with one client per pool, on real Redis."""

import pytest
from django.core.cache import cache, caches

from recsite.cache import RedisCache


@pytest.fixture(autouse=True)
def _redis_cache() -> None:
    if not isinstance(caches["default"], RedisCache):
        pytest.fail("these tests need REDIS_URL: run them through scripts/test")


def test_every_call_shares_one_client():
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client("some key") is client
    cache.set("recsite-test:k", "v")
    assert cache._cache.get_client(write=True) is client


def test_incr_keeps_django_contract_in_one_round_trip():
    cache.delete("recsite-test:n")
    with pytest.raises(ValueError, match="not found"):
        cache.incr("recsite-test:n")
    assert cache.get("recsite-test:n") is None  # a failed incr creates nothing
    cache.set("recsite-test:n", 5, timeout=30)
    assert cache.incr("recsite-test:n") == 6
    assert cache.incr("recsite-test:n", 10) == 16
    assert cache.get("recsite-test:n") == 16
    ttl = cache._cache.get_client().ttl(cache.make_and_validate_key("recsite-test:n"))
    assert 0 < ttl <= 30  # the expiry set with the value is kept


def test_incr_survives_a_flushed_script_cache():
    cache._cache.get_client(write=True).script_flush()  # as after a Redis restart
    cache.set("recsite-test:m", 1)
    assert cache.incr("recsite-test:m") == 2
