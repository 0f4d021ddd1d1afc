"""App config for recommend."""

from django.apps import AppConfig


class RecommendConfig(AppConfig):
    name = "recommend"
