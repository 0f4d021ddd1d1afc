"""Raw PostgreSQL statements for the hot paths, run inside Django's transaction."""

from typing import Any

from django.db import connection


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def pg_fetchall(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run one statement with server-side, binary parameters (``%b``) and return its rows.

    Django's cursors bind on the client: for arrays psycopg then quotes every
    element in Python, which costs more than the statement itself.
    """
    import psycopg

    connection.ensure_connection()
    # Django's wrapper turns psycopg's errors into django.db ones and marks a broken
    # connection, so it is closed at the end of the request rather than reused.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
