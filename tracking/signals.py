"""The signal tracking sends; other apps listen to it instead of importing tracking's internals.

``events_cleaned(sender=Event, site_id=int, event_pks=list[int])`` is sent after
the transaction that stored those Event rows has committed.
"""

from django.dispatch import Signal

events_cleaned = Signal()
