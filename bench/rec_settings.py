"""Settings of bench/recommendations.py's server: the project's, with its URLs plus the
ceiling view (bench/rec_urls.py)."""

from recsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.rec_urls"
