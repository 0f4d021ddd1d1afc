"""Raw PostgreSQL statements for the hot paths, run inside Django's transaction."""

from collections.abc import Collection
from typing import Any

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def pg_fetchall(sql: str, params: list[Any], *, prepare: bool = False, binary: bool = False
                ) -> list[tuple[Any, ...]]:
    """Run one statement with server-side, binary parameters (``%b``) and return its rows.

    Django's cursors bind on the client: for arrays psycopg then quotes every
    element in Python, which costs more than the statement itself. With
    ``prepare`` the statement is prepared once per connection (parsed and planned
    once, not on every call): for the statements of every request.

    Django opens its connections with psycopg's automatic preparation off
    (``prepare_threshold`` None, which makes psycopg ignore ``prepare=True`` too),
    so that connection poolers work: it is turned on for this statement only.
    ``binary`` asks for the results in binary (reading timestamps from text costs more).
    """
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    threshold = raw.prepare_threshold
    if prepare:
        raw.prepare_threshold = 5  # psycopg's default: prepare=True prepares at once
    # Django's wrapper turns psycopg's errors into django.db ones and marks a broken
    # connection, so it is closed at the end of the request rather than reused.
    try:
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, params, prepare=prepare or None, binary=binary or None)
            return cursor.fetchall()
    finally:
        raw.prepare_threshold = threshold


def pk_in(pks: Collection[int]) -> Q:
    """``Q(pk__in=pks)`` for a long list: on PostgreSQL the ids travel as one text
    parameter (``IN (SELECT unnest(...))``) instead of one placeholder each, which
    Django prepares and psycopg splits and quotes one by one in Python (for the
    thousands of ids of a drain, more than the query itself)."""
    if not is_postgresql():
        return Q(pk__in=list(pks))
    ids = ",".join(map(str, map(int, pks)))
    return Q(pk__in=RawSQL("SELECT unnest(string_to_array(%s, ',')::bigint[])", (ids,)))
