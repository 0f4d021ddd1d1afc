"""The public endpoints' throttles counted in the same Redis round trip as the cache read.

tracking's fixed-window throttles (per client IP, per site key) cost one round trip each;
a cached recommendation costs one more. Here their counters are incremented in the
cache read's pipeline instead: the same keys, windows and limits as tracking's, so the
budget per IP and per site is shared with collect, and a cached answer takes one round
trip in all. Without Redis, tracking's throttles run as they are.
"""

from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled

from tracking.throttling import FixedWindowThrottle


@dataclass(frozen=True)
class Counter:
    key: str  # the cache's full key of this window's counter
    seconds: int  # its lifetime
    limit: int
    window_end: float


def counters_for(request: HttpRequest, view: object,
                 throttles: list[FixedWindowThrottle]) -> list[Counter]:
    """This window's counter of each throttle that applies to the request."""
    found = []
    for throttle in throttles:
        if throttle.rate is None:
            continue
        key = throttle.get_cache_key(request, view)
        if key is None:
            continue
        now = throttle.timer()
        window = int(now // throttle.duration)
        found.append(Counter(key=cache.make_key(f"{key}:{window}"),
                             seconds=int(throttle.duration) + 1, limit=throttle.num_requests,
                             window_end=(window + 1) * throttle.duration))
    return found


def counts_check(counters: list[Counter], counts: list[int], *, now: float) -> None:
    """429 (with the wait) when a counter went past its limit."""
    for counter, count in zip(counters, counts, strict=True):
        if count > counter.limit:
            raise Throttled(wait=max(0.0, counter.window_end - now))
