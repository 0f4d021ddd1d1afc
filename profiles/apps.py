"""App config for profiles."""

from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profiles and segments"

    def ready(self) -> None:
        from profiles import receivers  # noqa: F401  (connects to tracking's events_cleaned)
