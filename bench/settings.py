"""Settings for the benchmarks: the project's own, plus the naive baseline's route."""

from recsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
