"""App config for tracking."""

from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from tracking import checks, cors  # noqa: F401  (registers checks and the CORS hook)
