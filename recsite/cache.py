"""Django's Redis cache backend, with one client object per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` for every operation
(about 80 us of CPU each here) and its ``incr`` asks EXISTS before INCRBY (two
round trips). The collect request makes three cache calls (two throttles and
the consent state): together they cost a third of its CPU. redis-py clients are
thread-safe and share their connection pool, so one per pool serves every call;
``incr`` becomes one round trip (a script) with the same contract: ValueError
for a missing key. ``count_and_get_many`` counts throttle windows and reads keys in
one round trip (collect: both throttles and the visitors' consent states).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What a cache call raises while the Redis server is down or unreachable. Paths that
# must not depend on Redis (collect) catch these and go on without the cache.
CACHE_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)

_INCR_EXISTING = """
if redis.call('exists', KEYS[1]) == 1 then
  return redis.call('incrby', KEYS[1], ARGV[1])
end
return false
"""


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_script: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index],
                                                               **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        if self._incr_script is None:
            self._incr_script = client.register_script(_INCR_EXISTING)
        value = self._incr_script(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with the client above."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
        self._count_script: Any = None

    def count_and_get_many(self, counters: Sequence[tuple[str, int]], keys: Iterable[str]
                           ) -> tuple[list[int], dict[str, Any]]:
        """Increment these counters (cache key, lifetime in seconds: set on a counter's first
        increment) and read these keys, in one round trip: (the new counts, the values
        found, as ``get_many`` gives them)."""
        keys = list(keys)
        client = self._cache.get_client(write=True)
        if self._count_script is None or self._count_script.registered_client is not client:
            self._count_script = client.register_script(_COUNT_AND_GET)
        # Our own keys, made by code: no need for the memcached-safety scan of each character.
        made = [self.make_key(key) for key, _ in counters]
        made += [self.make_key(key) for key in keys]
        replies = self._count_script(keys=made, args=[len(counters),
                                                      *(seconds for _, seconds in counters)])
        loads = self._cache._serializer.loads
        found = {key: loads(value) for key, value in zip(keys, replies[len(counters):],
                                                          strict=True) if value is not None}
        return [int(count) for count in replies[:len(counters)]], found


# The start of a script that counts fixed-window throttles: KEYS[1..n] are the counters,
# ARGV[1] is n and ARGV[2..n+1] their lifetimes in seconds (set on a counter's first
# increment); leaves ``n`` and ``out`` (the new counts) for the rest of the script.
COUNTERS_LUA = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('EXPIRE', KEYS[i], ARGV[i + 1]) end
  out[i] = count
end
"""

# The counters, then plain reads of the remaining KEYS, in one command.
_COUNT_AND_GET = COUNTERS_LUA + """
for i = n + 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) or false end
return out
"""
