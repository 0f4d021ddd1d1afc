"""tracking's own signal receivers: keep caches in step with the rows they mirror.

A change forgets the cached state at once (a reader then asks the database) and
writes the new state once the transaction commits, so a choice rolled back
never reaches the cache and one committed is read at once.
"""

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tracking.models import ConsentRecord
from tracking.services import CONSENT_CACHE_SECONDS, consent_cache_key


@receiver(post_save, sender=ConsentRecord)
def consent_cache_write(sender, instance: ConsentRecord, **kwargs) -> None:
    key, state = consent_cache_key(instance.site_id, instance.subject), int(instance.analytics)
    cache.delete(key)
    transaction.on_commit(lambda: cache.set(key, state, timeout=CONSENT_CACHE_SECONDS))


@receiver(post_delete, sender=ConsentRecord)
def consent_cache_forget(sender, instance: ConsentRecord, **kwargs) -> None:
    key = consent_cache_key(instance.site_id, instance.subject)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))
