"""Identity stitching: when an anonymous subject identifies as a user, and when it must not.

An event that carries both an anonymous subject and a user subject says that
visitor logged in: the anonymous subject is linked to the user, its profile
merges into the user's and its later events land on the user. Guards:

- ids that mean "nobody" (null, undefined, 0, guest, [object Object], ...)
  never identify, even if a client or an import path let one through;
- an anonymous subject linked once stays with that user: it is never merged
  into another user (a shared or hijacked device must not join two people);
- one user absorbs at most ``LINK_CAP_PER_DAY`` anonymous subjects a day (a
  user id leaked into a cached page would otherwise swallow every visitor).
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from django.db import connection
from django.db.models import Count

from profiles.models import IdentityLink
from tracking.db import is_postgresql, pg_fetchall, pk_in
from tracking.models import Event, Site
from tracking.services import subject_hash
from tracking.validation import JUNK_IDS

# The list on top of the ingest's, in the spellings snippets send.
NOT_AN_ID = frozenset({
    "", "null", "undefined", "none", "nil", "0", "-1", "anonymous", "guest",
    "[object object]", "nan", "true", "false",
}) | JUNK_IDS


@lru_cache(maxsize=256)
def _junk_for(salt: str, site_id: int) -> frozenset[str]:
    site = Site(pk=site_id, subject_salt=salt)
    spellings = {form for junk in NOT_AN_ID for form in (junk, junk.upper(), junk.title(),
                                                          junk.capitalize())}
    spellings |= {"[object Object]", "NaN"}
    return frozenset(subject_hash(site=site, kind="u", raw_id=raw) for raw in spellings)


def junk_user_subjects(*, site: Site) -> frozenset[str]:
    """The subject hashes that the site's "nobody" user ids would have."""
    return _junk_for(site.subject_salt, site.pk)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event that says an anonymous subject is a user (in arrival order)."""

    anon: str
    user: str
    ts: float


@dataclass(frozen=True, slots=True)
class Link:
    anon: str
    user: str
    day: date


def links_decide(candidates: Iterable[Candidate], *, linked: dict[str, str],
                 links_per_user_day: Counter[tuple[str, date]], cap: int,
                 junk: frozenset[str]) -> list[Link]:
    """The new links these candidates make, with every guard applied (pure)."""
    linked = dict(linked)
    counts = Counter(links_per_user_day)
    made: list[Link] = []
    for cand in candidates:
        if cand.user in junk or cand.anon == cand.user or cand.anon in linked:
            continue  # not an id, not anonymous, or already someone's: never re-linked
        day = datetime.fromtimestamp(cand.ts, tz=UTC).date()
        if counts[(cand.user, day)] >= cap:
            continue
        counts[(cand.user, day)] += 1
        linked[cand.anon] = cand.user
        made.append(Link(cand.anon, cand.user, day))
    return made


def candidates_of(*, site_id: int, pks: list[int] | None = None, upto_pk: int | None = None,
                  after_pk: int = 0) -> list[Candidate]:
    """Events (by id, or all up to an id) that carry an anonymous and a user subject."""
    events = Event.objects.filter(site_id=site_id, item_index=0, user_subject__isnull=False,
                                  pk__gt=after_pk)
    if pks is not None:
        events = events.filter(pk_in(pks))
    if upto_pk is not None:
        events = events.filter(pk__lte=upto_pk)
    rows = events.order_by("pk").values_list("subject", "user_subject", "ts")
    return [Candidate(anon, user, ts.timestamp()) for anon, user, ts in rows if anon != user]


def links_apply(*, site: Site, candidates: list[Candidate], cap: int) -> list[Link]:
    """Decide and store the links these candidates make; returns the new ones."""
    if not candidates:
        return []
    linked, per_day = _links_known(site, candidates)
    made = links_decide(candidates, linked=linked, links_per_user_day=per_day, cap=cap,
                        junk=junk_user_subjects(site=site))
    _links_store(site, made)
    return made


def _links_known(site: Site, candidates: list[Candidate]
                 ) -> tuple[dict[str, str], Counter[tuple[str, date]]]:
    """The existing links of the candidates' anonymous subjects, and the links made per
    (user, day) of the candidates' users and days."""
    anons = sorted({c.anon for c in candidates})
    users = sorted({c.user for c in candidates})
    days = sorted({datetime.fromtimestamp(c.ts, tz=UTC).date() for c in candidates})
    if not is_postgresql():
        linked = dict(IdentityLink.objects.filter(site=site, anon_subject__in=anons)
                      .values_list("anon_subject", "user_subject"))
        return linked, Counter({
            (user, day): n for user, day, n in
            IdentityLink.objects.filter(site=site, user_subject__in=users, day__in=days)
            .values_list("user_subject", "day").annotate(n=Count("pk"))
            .values_list("user_subject", "day", "n")
        })
    table = connection.ops.quote_name(IdentityLink._meta.db_table)
    rows = pg_fetchall(  # both reads in one round trip, the subjects as arrays
        f"SELECT anon_subject, user_subject, NULL::date, 0 FROM {table} WHERE site_id = %b "
        "AND anon_subject = ANY(%b::text[]) UNION ALL "
        f"SELECT NULL, user_subject, day, count(*)::int FROM {table} WHERE site_id = %b "
        "AND user_subject = ANY(%b::text[]) AND day = ANY(%b::date[]) "
        "GROUP BY user_subject, day", [site.pk, anons, site.pk, users, days])
    linked = {anon: user for anon, user, day, _ in rows if day is None}
    return linked, Counter({(user, day): n for _, user, day, n in rows if day is not None})


def _links_store(site: Site, links: list[Link]) -> None:
    if not links:
        return
    if not is_postgresql():
        IdentityLink.objects.bulk_create(
            [IdentityLink(site=site, anon_subject=link.anon, user_subject=link.user,
                          day=link.day) for link in links], ignore_conflicts=True)
        return
    table = connection.ops.quote_name(IdentityLink._meta.db_table)
    pg_fetchall(
        f"INSERT INTO {table} (site_id, anon_subject, user_subject, day, created_at) "
        "SELECT %b, l.anon, l.usr, l.day, now() FROM unnest(%b::text[], %b::text[], "
        "%b::date[]) AS l(anon, usr, day) ON CONFLICT DO NOTHING RETURNING id",
        [site.pk, [link.anon for link in links], [link.user for link in links],
         [link.day for link in links]])
