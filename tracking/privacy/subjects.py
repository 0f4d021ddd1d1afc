"""Finding a data subject's pseudonyms: from the id a person gives to every hash that is theirs."""

from collections.abc import Iterable

from django.db.models import Q

from tracking.models import ConsentReceipt, Event, PreviousSubjectKey, Site
from tracking.services import subject_hash
from tracking.signals import subject_aliases
from tracking.validation import Invalid, clean_id, clean_user_id

ID_KINDS = {"user": "u", "anon": "a"}


def raw_id_clean(value: object, id_type: str, field: str = "id") -> str:
    """The id as the tracker would send it, or Invalid (the same rules as collect)."""
    if id_type not in ID_KINDS:
        raise Invalid("type", "must be user or anon")
    raw = clean_user_id(value, field) if id_type == "user" else clean_id(value, field)
    if raw is None:
        raise Invalid(field, "is not a user id (empty, or a placeholder such as 'null')")
    return raw


def subject_hashes(*, site: Site, id_type: str, raw_id: str) -> list[str]:
    """The id's subject hash under the site's current key, then under each retired key
    still kept (rows stored before a rotation carry those)."""
    kind = ID_KINDS[id_type]
    hashes = [subject_hash(site=site, kind=kind, raw_id=raw_id)]
    for key in PreviousSubjectKey.objects.filter(site=site).values_list("key", flat=True):
        retired = Site(subject_salt=key)
        hashes.append(subject_hash(site=retired, kind=kind, raw_id=raw_id))
    return hashes


def subjects_resolve(*, site: Site, subjects: Iterable[str]) -> set[str]:
    """These hashes and every anonymous hash seen logged in as one of them.

    Events and receipts that carry a user hash name the anonymous hash of the same
    browser; other apps add theirs through the ``subject_aliases`` signal. Only the
    direction user -> anon is followed: a person asking by user id owns their devices'
    history, while an anon id does not prove who owns the account.
    """
    found = {s for s in subjects if s}
    if not found:
        return found
    users = set(found)
    found |= set(Event.objects.filter(site=site, user_subject__in=users)
                 .values_list("subject", flat=True).distinct())
    found |= set(ConsentReceipt.objects.filter(site=site, user_subject__in=users)
                 .values_list("subject", flat=True))
    for _, aliases in subject_aliases.send(sender=Site, site=site, subjects=frozenset(users)):
        found |= set(aliases or ())
    return found


def subject_filter(subjects: Iterable[str], *fields: str) -> Q:
    """A filter matching rows whose any of these fields is one of the subjects."""
    subjects = list(subjects)
    query = Q()
    for name in fields:
        query |= Q(**{f"{name}__in": subjects})
    return query
