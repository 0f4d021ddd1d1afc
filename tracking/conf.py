"""Settings of the tracking app, read lazily so override_settings works.

Each property reads ``settings.RECSITE[NAME]`` (the environment variable
``RECSITE_<NAME>`` fills it) and falls back to the documented default.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Django's settings object is slow to ask (a lazy object, a lookup per attribute) and
# the hot paths read about ten values per request: what was read is kept until a
# setting changes (override_settings, pytest-django's ``settings``; in production
# settings never change), as DRF keeps its api_settings.
_recsite: dict[str, Any] = {}  # "": settings.RECSITE
_read: dict[str, Any] = {}  # tracking's values, by name


def recsite_settings() -> dict[str, Any]:
    """``settings.RECSITE``: the apps' settings by name (tracking, profiles, recommend)."""
    try:
        return _recsite[""]
    except KeyError:
        value = _recsite[""] = getattr(settings, "RECSITE", {})
        return value


def _get(name: str, default: Any) -> Any:
    try:
        return _read[name]
    except KeyError:
        pass
    value = recsite_settings().get(name, default)
    if isinstance(default, bool) and isinstance(value, str):
        value = value.strip().lower() in {"1", "true", "yes", "on"}
    elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, str):
        value = int(value)
    _read[name] = value
    return value


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    # Any setting: a default may come from another one (EXPORT_DIR from DATA_DIR).
    _recsite.clear()
    _read.clear()


class TrackingSettings:
    @property
    def MAX_BODY_BYTES(self) -> int:
        """Largest request body accepted by collect, consent and events (413 above)."""
        return _get("MAX_BODY_BYTES", 256 * 1024)

    @property
    def MAX_EVENTS(self) -> int:
        """Most events in one batch (413 above)."""
        return _get("MAX_EVENTS", 500)

    @property
    def MAX_EVENT_BYTES(self) -> int:
        """Largest single event once validated; a bigger one is rejected as too_large."""
        return _get("MAX_EVENT_BYTES", 32 * 1024)

    @property
    def MAX_DEPTH(self) -> int:
        """Deepest JSON nesting accepted anywhere in a body (400 above)."""
        return _get("MAX_DEPTH", 10)

    @property
    def MAX_FUTURE(self) -> timedelta:
        """How far past the receive time a skew-corrected timestamp may lie."""
        return timedelta(seconds=_get("MAX_FUTURE_SECONDS", 10 * 60))

    @property
    def MAX_AGE(self) -> timedelta:
        """How old a live event may be when it arrives (the tracker queues offline)."""
        return timedelta(seconds=_get("MAX_AGE_SECONDS", 30 * 24 * 3600))

    @property
    def MAX_CLOCK_SKEW(self) -> timedelta:
        """Bound on the clock-skew correction taken from sent_at."""
        return timedelta(seconds=_get("MAX_CLOCK_SKEW_SECONDS", 7 * 24 * 3600))

    @property
    def SESSION_GAP(self) -> timedelta:
        """Inactivity that ends a session."""
        return timedelta(seconds=_get("SESSION_GAP_SECONDS", 30 * 60))

    @property
    def NOISE_MIN_ENGAGED_MS(self) -> int:
        """A session of one engagement-only event shorter than this is noise."""
        return _get("NOISE_MIN_ENGAGED_MS", 2000)

    @property
    def BOT_MAX_EVENTS_PER_SECOND(self) -> int:
        """More browser events than this from one subject within one second marks a bot."""
        return _get("BOT_MAX_EVENTS_PER_SECOND", 10)

    @property
    def THROTTLE_KEY_RATE(self) -> str | None:
        """Requests per site key (DRF rate syntax, e.g. '3000/s'); 'off' disables."""
        return _rate(_get("THROTTLE_KEY_RATE", "1000/s"))

    @property
    def THROTTLE_IP_RATE(self) -> str | None:
        """Requests per client IP (hashed, never stored); 'off' disables."""
        return _rate(_get("THROTTLE_IP_RATE", "20/s"))

    @property
    def DRAIN_MAX_BATCHES(self) -> int:
        """Raw batches a worker takes per transaction when draining the outbox."""
        return _get("DRAIN_MAX_BATCHES", 200)

    @property
    def SWEEP_AFTER_SECONDS(self) -> int:
        """A raw batch unprocessed for this long is re-enqueued by the sweeper."""
        return _get("SWEEP_AFTER_SECONDS", 10)

    @property
    def RAW_RETENTION_HOURS(self) -> int:
        """Processed raw batches are deleted after this many hours."""
        return _get("RAW_RETENTION_HOURS", 72)

    # --- privacy: exports, erasure, retention ------------------------------------------

    @property
    def EXPORT_DIR(self) -> Path:
        """Where data subject exports are written (one file per request)."""
        return Path(_get("EXPORT_DIR", settings.DATA_DIR / "exports"))

    @property
    def EXPORT_ZIP_BYTES(self) -> int:
        """An export whose JSON is larger than this is delivered as a ZIP."""
        return _get("EXPORT_ZIP_BYTES", 1024 * 1024)

    @property
    def EXPORT_KEEP_HOURS(self) -> int:
        """An export file is deleted this long after it was made (it holds personal data)."""
        return _get("EXPORT_KEEP_HOURS", 7 * 24)

    @property
    def EXPORT_WAIT_SECONDS(self) -> float:
        """How long GET .../export waits for its task before answering 202 (poll again)."""
        return float(_get("EXPORT_WAIT_SECONDS", 3))

    @property
    def ERASURE_RETRAIN_SECONDS(self) -> int:
        """An erasure schedules a new model version this many seconds later (erasures in
        between share it), so no model version trained after that has the subject in it."""
        return _get("ERASURE_RETRAIN_SECONDS", 900)

    @property
    def RETENTION_CHUNK_ROWS(self) -> int:
        """Rows deleted per statement by the retention purge."""
        return _get("RETENTION_CHUNK_ROWS", 5000)

    @property
    def RETENTION_MAX_CHUNKS(self) -> int:
        """Chunks one retention task deletes before handing the rest to a new task."""
        return _get("RETENTION_MAX_CHUNKS", 50)


def _rate(value: str | None) -> str | None:
    if value is None or str(value).strip().lower() in {"", "off", "none", "0"}:
        return None
    return str(value)


tracking_settings = TrackingSettings()
