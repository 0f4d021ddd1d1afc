"""The Celery app: its configuration, the queue names and the beat schedule."""

import enum
import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")


class Queue(enum.StrEnum):
    """Every queue recsite uses; tasks name theirs from here."""

    INGEST = "ingest"
    DEFAULT = "default"


app = Celery("recsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = Queue.DEFAULT
app.conf.task_queues = [KombuQueue(name, routing_key=name) for name in Queue]
app.conf.task_routes = {"tracking.*": {"queue": Queue.INGEST},
                       "profiles.*": {"queue": Queue.DEFAULT}}
app.autodiscover_tasks()

# Periodic work, each entry with an expiry so a backlog of beats never piles up.
app.conf.beat_schedule = {
    "tracking-sweep-outbox": {
        "task": "tracking.sweep_outbox",
        "schedule": 30.0,
        "options": {"queue": Queue.INGEST, "expires": 25},
    },
    "tracking-purge-retention": {
        "task": "tracking.purge_retention",
        "schedule": 3600.0,
        "options": {"queue": Queue.DEFAULT, "expires": 3000},
    },
    # Profiles: each fans out one task per site.
    "profiles-sweep-segments": {
        "task": "profiles.for_each_site",
        "schedule": 900.0,
        "args": ("sweep_segments",),
        "options": {"queue": Queue.DEFAULT, "expires": 800},
    },
    "profiles-rescore": {
        "task": "profiles.for_each_site",
        "schedule": 3600.0,
        "args": ("rescore",),
        "options": {"queue": Queue.DEFAULT, "expires": 3000},
    },
    "profiles-recompute": {
        "task": "profiles.for_each_site",
        "schedule": crontab(hour=3, minute=10),
        "args": ("recompute",),
        "options": {"queue": Queue.DEFAULT, "expires": 6 * 3600},
    },
    "profiles-refit-clusters": {
        "task": "profiles.for_each_site",
        "schedule": crontab(hour=4, minute=10),
        "args": ("refit_clusters",),
        "options": {"queue": Queue.DEFAULT, "expires": 6 * 3600},
    },
    # Recommend: a new model version per active site (each trained by its own task).
    "recommend-train-all": {
        "task": "recommend.train_all",
        "schedule": 6 * 3600.0,
        "options": {"queue": Queue.DEFAULT, "expires": 3600},
    },
    # Thompson-sampling experiments: new variant shares from the latest clicks.
    "recommend-rebalance-bandits": {
        "task": "recommend.rebalance_bandits",
        "schedule": 600.0,
        "options": {"queue": Queue.DEFAULT, "expires": 500},
    },
}
