"""App config of the flagged events (its own app: its table needs no tracking migration)."""

from django.apps import AppConfig


class FlaggedConfig(AppConfig):
    name = "tracking.flagged"
    label = "tracking_flagged"
    verbose_name = "Flagged events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tracking.flagged import receivers  # noqa: F401  (erasure and export)
