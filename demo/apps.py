"""The demo shop: a storefront over the shipped Online Retail sample, with the tracker,
the consent banner and recommendation widgets."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo shop"
