"""manage.py demo_shop: categories, placements, an experiment and a model for the demo shop
(after demo_setup imported the sample). Safe to run again."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from demo.shop import SITE_NAME, shop_prepare, shop_site


class Command(BaseCommand):
    help = "Prepare the demo shop: item categories, placements, an experiment, a trained model."

    def handle(self, *args: Any, **options: Any) -> None:
        site = shop_site()
        if site is None:
            raise CommandError(f"no site {SITE_NAME!r}: run manage.py demo_setup first")
        self.stdout.write("Preparing the demo shop (categories, placements, model) ...")
        version = shop_prepare(site=site)
        if version is None or version.status != "ready":
            raise CommandError(f"training failed: {getattr(version, 'error', 'no version')}")
        self.stdout.write(f"Model v{version.pk}: {version.n_events:,} events, "
                          f"{version.n_items:,} items, NDCG@20 "
                          f"{version.metrics.get('ndcg@20', 0):.4f} (popularity "
                          f"{version.metrics.get('popularity_ndcg@20', 0):.4f})")
