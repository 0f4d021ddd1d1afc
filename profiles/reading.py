"""Reading Event rows as profiles need them: the owner, the item's category, a purchase key.

One SQL statement on PostgreSQL (the owner and the category joined in, streamed
through a server-side cursor for a full recompute); the ORM and Python
elsewhere (the embedded SQLite default). Both give the same ``EventRow``s.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection

from profiles.models import IdentityLink
from profiles.state import EventRow
from tracking.db import is_postgresql, pg_fetchall
from tracking.models import Event, Item

if TYPE_CHECKING:
    from profiles.columnar import RowColumns

STREAM_CHUNK = 20_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (the database's own resolution)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def batch_rows(*, site_id: int, pks: list[int], after_pk: int, junk: frozenset[str]
               ) -> list[EventRow]:
    """The rows with these ids above ``after_pk``, in id order, each with its owner."""
    if not pks:
        return []
    if is_postgresql():
        sql, params = _pg_select(site_id, junk)
        sql += " AND e.id = ANY(%b::bigint[]) AND e.id > %b ORDER BY e.id"
        return [EventRow(*row) for row in pg_fetchall(sql, [*params, pks, after_pk])]
    events = Event.objects.filter(site_id=site_id, pk__in=pks, pk__gt=after_pk).order_by("pk")
    return list(_portable_rows(site_id, events, junk))


def subjects_rows(*, site_id: int, subjects: list[str], since: int | None,
                  junk: frozenset[str], names: list[str] | None = None) -> list[EventRow]:
    """The rows of these (raw) subjects at or after ``since`` (microseconds; None: all),
    only of these event names if given."""
    if not subjects:
        return []
    if is_postgresql():
        sql, params = _pg_select(site_id, junk)
        sql += " AND e.subject = ANY(%b::text[])"
        params.append(subjects)
        if since is not None:
            sql += " AND e.ts >= %b"
            params.append(from_us(since))
        if names is not None:
            sql += " AND e.name = ANY(%b::text[])"
            params.append(names)
        return [EventRow(*row) for row in pg_fetchall(sql + " ORDER BY e.ts", params)]
    events = Event.objects.filter(site_id=site_id, subject__in=subjects)
    if since is not None:
        events = events.filter(ts__gte=from_us(since))
    if names is not None:
        events = events.filter(name__in=names)
    return list(_portable_rows(site_id, events.order_by("ts"), junk))


def site_rows_by_owner(*, site_id: int, upto_pk: int, junk: frozenset[str]
                       ) -> Iterator[EventRow]:
    """Every row of the site up to ``upto_pk``, grouped by owner (owner, time order); the
    portable path (PostgreSQL reads columns: ``site_row_columns``)."""
    events = Event.objects.filter(site_id=site_id, pk__lte=upto_pk).order_by("pk")
    rows = list(_portable_rows(site_id, events, junk))
    rows.sort(key=lambda row: (row.owner, row.ts))
    yield from rows


def _pg_select(site_id: int, junk: frozenset[str], *, few: bool = True
               ) -> tuple[str, list[Any]]:
    """The SELECT of EventRow columns; the caller appends conditions and an order.

    ``few`` rows: each row's login link is looked up by index (a hash join would read
    every link of the site for a batch of 500); for all rows, one hash join is best.
    """
    event = connection.ops.quote_name(Event._meta.db_table)
    item = connection.ops.quote_name(Item._meta.db_table)
    link = connection.ops.quote_name(IdentityLink._meta.db_table)
    if few:
        linked = (f"(SELECT l.user_subject FROM {link} l WHERE l.site_id = e.site_id "
                  "AND l.anon_subject = e.subject)")
        link_join = ""
    else:
        linked = "l.user_subject"
        link_join = (f"LEFT JOIN {link} l ON l.site_id = e.site_id "
                     "AND l.anon_subject = e.subject")
    sql = f"""
        WITH junk AS (SELECT %b::text[] AS ids)
        SELECT COALESCE(CASE WHEN e.user_subject = ANY(junk.ids) THEN NULL
                             ELSE e.user_subject END, {linked}, e.subject) AS owner,
               e.subject,
               CASE WHEN e.user_subject = ANY(junk.ids) THEN NULL ELSE e.user_subject END
                   AS user_subject,
               e.session, e.name, e.item_id, e.item_index,
               (extract(epoch FROM e.ts) * 1000000)::bigint AS ts, e.value, e.engaged_ms,
               e.context->>'device' AS device,
               COALESCE(NULLIF(e.context->'item'->>'item_category', ''), NULLIF(i.category, ''))
                   AS category,
               COALESCE(NULLIF(e.context->'params'->>'transaction_id', ''), e.event_id::text)
                   AS purchase_key
        FROM junk, {event} e
        {link_join}
        LEFT JOIN {item} i ON i.site_id = e.site_id AND i.external_id = e.item_id
                          AND e.item_id <> ''
        WHERE e.site_id = %b"""
    return sql, [sorted(junk), site_id]


def site_row_columns(*, site_id: int, upto_pk: int, junk: frozenset[str],
                     progress: Callable[[int], object] | None = None) -> "RowColumns":
    """Every row of a site up to ``upto_pk`` as columns (PostgreSQL only), in no order."""
    import numpy as np
    import psycopg

    from profiles.columnar import RowColumns

    inner, params = _pg_select(site_id, junk, few=False)
    sql = (
        "SELECT r.owner, CASE WHEN r.item_index = 0 AND r.subject <> r.owner THEN r.subject END, "
        "r.item_index = 0 AND COALESCE(r.user_subject = r.owner, false), "
        "CASE WHEN r.item_index = 0 THEN left(r.session, 12) END, r.name, r.item_index = 0, "
        "r.ts, r.value, COALESCE(r.engaged_ms, 0), r.device, r.category, "
        "CASE WHEN r.name = 'purchase' THEN r.purchase_key END "
        f"FROM ({inner} AND e.id <= %b) AS r")
    columns: list[list[Any]] = [[] for _ in range(12)]
    connection.ensure_connection()
    raw: psycopg.Connection = connection.connection
    with connection.cursor() as plain:
        # Every row is read: hash joins are right whatever the statistics say (just after
        # a bulk import they say "a few rows", and nested loops would take minutes).
        plain.execute("SET LOCAL enable_nestloop = off")
    with raw.cursor(name="profiles_site_columns", binary=True) as cursor:
        cursor.itersize = STREAM_CHUNK
        cursor.execute(sql, [*params, upto_pk])
        while chunk := cursor.fetchmany(STREAM_CHUNK):
            for column, values in zip(columns, zip(*chunk, strict=True), strict=True):
                column.extend(values)
            if progress is not None:
                progress(len(chunk))
    (owner, alias, identified, session, name, first, ts, value, engaged, device, category,
     purchase_key) = columns
    return RowColumns(
        owner=owner, alias=alias, identified=np.array(identified, dtype=bool), session=session,
        name=name, first=np.array(first, dtype=bool), ts=np.array(ts, dtype=np.int64),
        value=np.array(value, dtype=np.float64), engaged_ms=np.array(engaged, dtype=np.int64),
        device=device, category=category, purchase_key=purchase_key)


def _portable_rows(site_id: int, events: Any, junk: frozenset[str]) -> Iterator[EventRow]:
    values = list(events.values_list(
        "subject", "user_subject", "session", "name", "item_index", "ts", "value",
        "engaged_ms", "context", "item_id", "event_id"))
    links = dict(IdentityLink.objects.filter(
        site_id=site_id, anon_subject__in={v[0] for v in values}
    ).values_list("anon_subject", "user_subject"))
    categories = dict(Item.objects.filter(
        site_id=site_id, external_id__in={v[9] for v in values if v[9]}
    ).exclude(category="").values_list("external_id", "category"))
    for (subject, user_subject, session, name, item_index, ts, value, engaged_ms, context,
         item_id, event_id) in values:
        context = context or {}
        if user_subject in junk:
            user_subject = None
        owner = user_subject or links.get(subject) or subject
        device = context.get("device")
        category = None
        if item_id:
            category = (context.get("item") or {}).get("item_category") or \
                categories.get(item_id)
        transaction = (context.get("params") or {}).get("transaction_id")
        key = str(transaction) if transaction not in (None, "") else str(event_id)
        yield EventRow(owner, subject, user_subject, session, name, item_id, item_index,
                       epoch_us(ts), value, engaged_ms, None if device is None else str(device),
                       category or None, key)
