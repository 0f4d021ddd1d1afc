"""manage.py train [--site KEY_OR_NAME ...] [--queue]: train the sites' recommendation models."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from recommend import services, tasks
from recommend.models import ModelVersion
from tracking.models import Site


class Command(BaseCommand):
    help = ("Train a new model version for each site (all active sites by default) from "
            "its events and catalog, show progress, and make it active once ready. With "
            "--queue, leave the training to a Celery worker instead.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--site", action="append", default=[],
                            help="public key or name of a site (repeatable)")
        parser.add_argument("--queue", action="store_true",
                            help="queue the training for a worker instead of training here")

    def handle(self, *args: Any, **options: Any) -> None:
        sites = [self._site(value) for value in options["site"]] or \
            list(Site.objects.filter(is_active=True).order_by("pk"))
        if not sites:
            raise CommandError('no site yet: create one with manage.py create_site "My shop"')
        failed = 0
        for site in sites:
            if options["queue"]:
                version = services.model_version_create(site=site)
                transaction.on_commit(lambda pk=version.pk: tasks.train_version.delay(pk))
                self.stdout.write(f"{site.name}: queued version {version.pk}")
                continue
            version = self._train(site, show=options["verbosity"] > 0)
            failed += version.status != ModelVersion.Status.READY
            self.stdout.write(summary(version))
        if failed:
            raise CommandError(f"{failed} of {len(sites)} trainings failed")

    def _train(self, site: Site, *, show: bool) -> ModelVersion:
        bar = tqdm(total=100, desc=site.name[:30], unit="%", file=sys.stderr, disable=not show,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

        def progress(fraction: float, stage: str) -> None:
            bar.n = round(100 * fraction)
            bar.set_postfix_str(stage, refresh=False)
            bar.refresh()

        try:
            return services.site_train(site=site, progress=progress)
        finally:
            bar.close()

    @staticmethod
    def _site(value: str) -> Site:
        matches = list(Site.objects.filter(public_key=value)) or \
            list(Site.objects.filter(name=value))
        if len(matches) != 1:
            found = "no site" if not matches else f"{len(matches)} sites"
            raise CommandError(f"{found} with the public key or name {value!r}")
        return matches[0]


def summary(version: ModelVersion) -> str:
    """One line per version: status, data, time, size, offline metrics."""
    if version.status != ModelVersion.Status.READY:
        return f"{version.site.name}: version {version.pk} {version.status}: {version.error}"
    metrics = version.metrics
    measured = (f"; held-out NDCG@20 {metrics['ndcg@20']:.4f} (popularity "
                f"{metrics['popularity_ndcg@20']:.4f}) on {metrics['test_users']:,} subjects"
                if "ndcg@20" in metrics else "")
    return (f"{version.site.name}: version {version.pk} active: {version.n_events:,} events, "
            f"{version.n_subjects:,} subjects, {version.n_items:,} items, "
            f"{version.training_seconds:.1f} s, {version.size_bytes / 2**20:.1f} MB{measured}")
