"""App config for recommend."""

from django.apps import AppConfig


class RecommendConfig(AppConfig):
    name = "recommend"

    def ready(self) -> None:
        from recommend import receivers  # noqa: F401  (events_cleaned, settings, consent)
