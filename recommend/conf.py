"""Settings of the recommend app, read lazily so override_settings works.

Each property reads ``settings.RECSITE[NAME]`` (the environment variable
``RECSITE_<NAME>`` fills it) and falls back to the documented default.
"""

import json
from pathlib import Path
from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "RECSITE", {}).get(name, default)


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


recommend_settings = RecommendSettings()
