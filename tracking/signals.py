"""The signals tracking sends; other apps listen to them instead of importing tracking's internals.

``events_cleaned(sender=Event, site_id=int, event_pks=list[int], subjects=frozenset[str])``
is sent after the transaction that stored those Event rows has committed; ``subjects``
holds their subject and user-subject hashes (so receivers need not read them back).

``subjects_erased(sender=DataSubjectRequest, site=Site, subjects=set[str])`` is sent
inside the erasure's transaction (tracking.privacy.erasure): each receiver deletes
what its app holds of these subject hashes and returns ``{"app.Table": rows}``, the
counts that become the erasure's proof. An exception rolls the whole erasure back.

``subjects_exported(sender=DataSubjectRequest, site=Site, subjects=set[str])``: each
receiver returns ``{"app.Table": [row dicts]}``, every row its app holds about them.

``subject_aliases(sender=DataSubjectRequest, site=Site, subjects=set[str])``: each
receiver returns the other subject hashes it knows to be the same person (the anonymous
ids a user logged in from), so erasure and export reach them too.
"""

from django.dispatch import Signal

events_cleaned = Signal()
subjects_erased = Signal()
subjects_exported = Signal()
subject_aliases = Signal()
