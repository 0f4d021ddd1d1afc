"""App config for tracking."""

from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        # Registers the system checks, the CORS hook and the cache receivers.
        from tracking import checks, cors, receivers  # noqa: F401
