"""Rotating a site's subject key (the HMAC key that turns ids into subject hashes).

After a rotation new rows carry hashes under the new key: the same person gets a new
pseudonym, so their older history, profile and consent state no longer join the new
rows. The retired key is kept (PreviousSubjectKey) so that erasure, export and the admin's
lookup still find rows hashed with it, and deleted once the site's retention has passed
since the rotation. Change the banner version together with a rotation: visitors are then
asked again, and their new consent is recorded under the new pseudonym.
"""

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tracking.models import PreviousSubjectKey, Site


@transaction.atomic
def subject_key_rotate(*, site: Site) -> PreviousSubjectKey:
    """Give the site a new subject key, keeping the old one for lookups; returns the old."""
    site = Site.objects.select_for_update().get(pk=site.pk)
    now = timezone.now()
    retired = PreviousSubjectKey.objects.create(
        site=site, key=site.subject_salt, retired_at=now,
        forget_after=now + timedelta(days=site.retention_days))
    site.subject_salt = secrets.token_hex(32)
    site.save(update_fields=["subject_salt"])
    return retired
