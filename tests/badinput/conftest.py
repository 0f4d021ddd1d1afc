"""Fixtures of the bad-input suite: a site open to the fuzzers, throttles off, WSGI calls.

The fuzzers send thousands of requests from one address within seconds, so the
throttles are off here (tests/tracking covers them); the site needs no consent,
so generated events reach validation, storage and processing rather than stopping
at the consent check (tests/tracking covers that too).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import transaction

from tests.conftest import ORIGIN
from tracking.services import SiteCreated, site_create


@pytest.fixture
def open_site(db, settings) -> SiteCreated:
    """A site without a consent requirement, its throttles off."""
    # An export answers 202 at once instead of waiting for a task that, inside the test's
    # transaction, never runs.
    settings.RECSITE = {**settings.RECSITE, "THROTTLE_IP_RATE": "off",
                        "THROTTLE_KEY_RATE": "off", "EXPORT_WAIT_SECONDS": 0}
    return site_create(name="Fuzzed shop", origins=[ORIGIN], require_consent=False)


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a savepoint that is rolled back: each example starts from the same
    database, and one that broke its transaction cannot spoil the next."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
