"""Settings of the recommend app, read lazily so override_settings works.

Each property reads ``settings.RECSITE[NAME]`` (the environment variable
``RECSITE_<NAME>`` fills it) and falls back to the documented default.
"""

import json
from pathlib import Path
from typing import Any

from django.conf import settings

from tracking.conf import recsite_settings


def _get(name: str, default: Any) -> Any:
    return recsite_settings().get(name, default)


class RecommendSettings:
    @property
    def MODEL_DIR(self) -> Path:
        """Where model versions are written (one .npz per version, per site folder)."""
        return Path(_get("MODEL_DIR", settings.DATA_DIR / "models"))

    @property
    def EVENT_WEIGHTS(self) -> dict[str, float]:
        """Weight of one event of each name in training; other names are not read.

        A JSON object in the environment, e.g. RECSITE_EVENT_WEIGHTS='{"view_item": 1}'.
        """
        value = _get("EVENT_WEIGHTS", {
            "view_item": 1.0, "select_item": 1.0, "add_to_wishlist": 2.0,
            "add_to_cart": 3.0, "begin_checkout": 3.0, "purchase": 5.0, "rate_item": 1.0,
        })
        return {str(k): float(v) for k, v in (json.loads(value) if isinstance(value, str)
                                              else value).items()}

    @property
    def TRAIN_WINDOW_DAYS(self) -> int:
        """Days of events a model learns from."""
        return int(_get("TRAIN_WINDOW_DAYS", 180))

    @property
    def TRAIN_HOLDOUT(self) -> float:
        """Share of each subject's latest events held out to measure a new version (0: none)."""
        return float(_get("TRAIN_HOLDOUT", 0.1))

    @property
    def KEEP_VERSIONS(self) -> int:
        """Artifacts of this many latest versions per site are kept; older files are deleted."""
        return int(_get("KEEP_VERSIONS", 5))

    @property
    def CATALOG_CHECK_SECONDS(self) -> float:
        """How often a serving process looks for new catalog items to add to its model."""
        return float(_get("CATALOG_CHECK_SECONDS", 60))

    # --- serving -----------------------------------------------------------------------

    @property
    def REC_CACHE_SECONDS(self) -> int:
        """How long an answer is cached per subject and placement (0: no cache); new events
        of the subject, a new model version and catalog changes invalidate it sooner."""
        return int(_get("REC_CACHE_SECONDS", 300))

    @property
    def MAX_LIMIT(self) -> int:
        """Most items one request may ask for."""
        return int(_get("MAX_LIMIT", 50))

    @property
    def MAX_PAGED_ITEMS(self) -> int:
        """Most items shown through "next items" pages of one list (no repeats among them)."""
        return int(_get("MAX_PAGED_ITEMS", 100))

    @property
    def VERSION_CHECK_SECONDS(self) -> float:
        """How often a serving process asks the database which model version is active
        (an activation also tells it at once through the cache generation)."""
        return float(_get("VERSION_CHECK_SECONDS", 5))

    @property
    def TRENDING_HALF_LIFE_HOURS(self) -> float:
        """Trending: an event's weight halves with this age (before the site's latest event)."""
        return float(_get("TRENDING_HALF_LIFE_HOURS", 24))

    @property
    def TRENDING_WINDOW_DAYS(self) -> float:
        """Trending and segment-popular lists read this many days of events."""
        return float(_get("TRENDING_WINDOW_DAYS", 7))

    @property
    def LISTS_CACHE_SECONDS(self) -> int:
        """How long trending and segment-popular lists are kept before being recounted."""
        return int(_get("LISTS_CACHE_SECONDS", 600))

    @property
    def ATTRIBUTION_WINDOW_HOURS(self) -> float:
        """An add_to_cart or purchase counts for a recommendation this long after it was made."""
        return float(_get("ATTRIBUTION_WINDOW_HOURS", 24))

    @property
    def REC_TOKEN_MAX_AGE_DAYS(self) -> float:
        """Older rec_tokens are ignored (for attribution and for "next items")."""
        return float(_get("REC_TOKEN_MAX_AGE_DAYS", 30))


recommend_settings = RecommendSettings()
