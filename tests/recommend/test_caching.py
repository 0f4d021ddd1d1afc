"""The answer cache's one-command read: the script, its reload, and the backend it uses."""

import pytest

from recommend.caching import answer_cache

pytestmark = pytest.mark.django_db


def test_a_read_counts_reads_the_generation_and_finds_a_kept_answer(site):
    counter = f"recsite:test:counter:{site.pk}"
    answer_cache.set(site.pk, "subject-1", "field-1", b'{"items": []}', generation=0,
                     seconds=60)
    generation, answer, counts = answer_cache.get(site.pk, "subject-1", "field-1",
                                                  counters=[(counter, 5)])
    assert (generation, answer, counts) == (0, b'{"items": []}', [1])
    assert answer_cache.get(site.pk, "subject-1", "field-1",
                            counters=[(counter, 5)])[2] == [2]
    assert answer_cache._redis().ttl(counter) in (4, 5)  # set on the window's first count
    answer_cache.site_invalidate(site.pk)
    assert answer_cache.get(site.pk, "subject-1", "field-1")[:2] == (1, None)


def test_the_script_is_loaded_again_when_the_server_forgot_it(site):
    answer_cache.get(site.pk, "subject-1", "field-1")
    answer_cache._redis().script_flush()  # as after a restart without persistence
    answer_cache.set(site.pk, "subject-1", "field-1", b"{}", generation=0, seconds=60)
    assert answer_cache.get(site.pk, "subject-1", "field-1")[1] == b"{}"


def test_a_caches_change_reaches_the_answer_cache(site, settings):
    assert answer_cache.pipelined
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not answer_cache.pipelined
    answer_cache.set(site.pk, "subject-1", "field-1", b"{}", generation=0, seconds=60)
    assert answer_cache.get(site.pk, "subject-1", "field-1") == (0, b"{}", [])
