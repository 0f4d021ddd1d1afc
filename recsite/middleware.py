"""503 with Retry-After when a backing service is down, instead of a 500.

A view that cannot reach PostgreSQL (or Redis, where it depends on it) has
stored nothing the client can rely on: the honest answer is "unavailable, try
again later", which the tracker and any well-behaved client retry. The
collect view's one durable insert either committed before it answered 202 or
raised here, so no 202 is ever given for a batch that was not stored.
"""

from collections.abc import Callable

import psycopg
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from recsite.cache import CACHE_UNAVAILABLE

# Seconds a client should wait before trying again: long enough for a PostgreSQL
# restart or a fail-over, short enough that queued browser events go out soon after.
RETRY_AFTER_SECONDS = 5

# Errors that mean "the service is not answering", not "the query is wrong".
_DATABASE_DOWN = (OperationalError, InterfaceError, psycopg.OperationalError,
                  psycopg.InterfaceError)


def unavailable_service(exception: BaseException) -> str | None:
    """'database' or 'cache' when the exception says that service is unreachable, else None."""
    if isinstance(exception, _DATABASE_DOWN):
        return "database"
    if isinstance(exception, CACHE_UNAVAILABLE):
        return "cache"
    return None


class ServiceUnavailableMiddleware:
    """Answer a view's database or cache outage as 503 JSON with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception
                          ) -> HttpResponse | None:
        service = unavailable_service(exception)
        if service is None:
            return None
        if service == "database":
            _connections_recheck()
        response = JsonResponse(
            {"error": "unavailable",
             "detail": f"the {service} is unavailable; nothing was stored. Retry after "
                       f"{RETRY_AFTER_SECONDS} s",
             "retry_after": RETRY_AFTER_SECONDS},
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def _connections_recheck() -> None:
    """Have Django test each open connection when the request ends, closing a dead one.

    An error raised by psycopg directly (a raw cursor) does not mark Django's
    wrapper; without this a persistent connection broken by a database restart
    would fail every later request of this process until CONN_MAX_AGE ran out.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            connection.errors_occurred = True

