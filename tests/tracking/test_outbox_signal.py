"""The pending flag: at most one drain queued, and none forgotten after a drain starts."""

from unittest import mock

from django.core.cache import cache

from tracking import services


def test_one_enqueue_while_the_flag_is_set_and_again_after_a_drain_clears_it(db):
    with mock.patch("tracking.tasks.process_outbox.apply_async") as enqueue, \
            mock.patch.object(services.transaction, "on_commit", lambda fn: fn()):
        services.outbox_pending_clear()
        services.outbox_signal()
        services.outbox_signal()
        assert enqueue.call_count == 1 and cache.get(services.PENDING_FLAG) is not None
        services.outbox_pending_clear()  # what a drain does first
        services.outbox_signal()
        assert enqueue.call_count == 2


def test_a_process_that_just_saw_the_flag_does_not_ask_redis_again(db):
    with mock.patch("tracking.tasks.process_outbox.apply_async"), \
            mock.patch.object(services.transaction, "on_commit", lambda fn: fn()):
        services.outbox_pending_clear()
        services.outbox_signal()  # sets the flag
        services.outbox_signal()  # sees it set: remembers that for a moment
        with mock.patch.object(services.cache, "add") as add:
            services.outbox_signal()
            assert add.call_count == 0
