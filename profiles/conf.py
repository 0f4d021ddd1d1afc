"""Settings of the profiles app, read lazily so override_settings works.

Each property reads ``settings.RECSITE[NAME]`` (the environment variable
``RECSITE_<NAME>`` fills it) and falls back to the documented default.
"""

from typing import Any

from tracking.conf import recsite_settings


def _get(name: str, default: Any) -> Any:
    value = recsite_settings().get(name, default)
    if isinstance(value, str) and isinstance(default, int | float) and \
            not isinstance(default, bool):
        return type(default)(value)
    return value


class ProfileSettings:
    @property
    def AFFINITY_HALF_LIFE_DAYS(self) -> float:
        """Half-life of an event's weight in category affinity (recency decay)."""
        return float(_get("AFFINITY_HALF_LIFE_DAYS", 30.0))

    @property
    def AFFINITY_WEIGHTS(self) -> dict[str, float]:
        """Weight of one event of each name in category affinity; others count 0.

        ``rate_item`` (MovieLens) is weighted by its rating instead: rating / 2.5.
        """
        return _get("AFFINITY_WEIGHTS", {
            "view_item": 1.0, "select_item": 1.0, "add_to_wishlist": 2.0,
            "add_to_cart": 3.0, "begin_checkout": 3.0, "purchase": 5.0,
        })

    @property
    def LINK_CAP_PER_DAY(self) -> int:
        """Most anonymous ids one user may absorb per day (identity stitching guard)."""
        return int(_get("PROFILE_LINK_CAP_PER_DAY", 10))

    @property
    def NEW_DAYS(self) -> int:
        """A subject first seen at most this many days ago is in the 'new' stage."""
        return int(_get("PROFILE_NEW_DAYS", 14))

    @property
    def AT_RISK_DAYS(self) -> int:
        """Unseen for more than this many days: 'at risk'."""
        return int(_get("PROFILE_AT_RISK_DAYS", 30))

    @property
    def CHURN_DAYS(self) -> int:
        """Unseen for more than this many days: 'churned'."""
        return int(_get("PROFILE_CHURN_DAYS", 90))

    @property
    def CLUSTER_K_RANGE(self) -> tuple[int, int]:
        """Smallest and largest k tried for K-Means (chosen by silhouette)."""
        low, high = _get("CLUSTER_K_RANGE", (2, 8))
        return int(low), int(high)

    @property
    def CLUSTER_MIN_PROFILES(self) -> int:
        """Fewer profiles than this: no clustering (the clusters would mean nothing)."""
        return int(_get("CLUSTER_MIN_PROFILES", 30))

    @property
    def CLUSTER_FIT_SAMPLE(self) -> int:
        """K-Means is fitted on at most this many profiles, then every profile is assigned."""
        return int(_get("CLUSTER_FIT_SAMPLE", 100_000))

    @property
    def SILHOUETTE_SAMPLE(self) -> int:
        """Silhouette is computed on a sample of this many profiles (it is quadratic)."""
        return int(_get("SILHOUETTE_SAMPLE", 4000))

    @property
    def SEGMENT_CACHE_SECONDS(self) -> int:
        """How long a subject's current segment slugs stay cached for serving."""
        return int(_get("SEGMENT_CACHE_SECONDS", 3600))


profile_settings = ProfileSettings()
