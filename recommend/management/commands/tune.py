"""manage.py tune: pick the hybrid's blend weights on a validation split."""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommend import offline, services
from recommend.datasets import FORMATS, DatasetError, dataset_read
from tracking.models import Site


class Command(BaseCommand):
    help = (
        "Pick the hybrid's blend weights (item-kNN, content, popularity, session) with the "
        "best NDCG@20 on a validation split: a site's latest events per subject (--site), "
        "or a data set file split as manage.py evaluate does it, inside its training part "
        "(--format/--events). With --site and --train, a new version is trained with the "
        "weights, for one --placement or as the default blend; later versions keep them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--site", help="public key or name of a site")
        parser.add_argument("--format", choices=FORMATS)
        parser.add_argument("--events", help="data set file (or movielens directory)")
        parser.add_argument("--placement", help="store the weights for this placement only")
        parser.add_argument("--train", action="store_true",
                            help="with --site: train a version with the tuned weights now")
        parser.add_argument("--json", dest="json_path", help="write the result here as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["site"]) == bool(options["format"] or options["events"]):
            raise CommandError("give either --site, or --format and --events")
        if options["site"]:
            result = self._site(options)
        else:
            if not (options["format"] and options["events"]):
                raise CommandError("--format and --events go together")
            result = self._file(options)
        self.stdout.write(f"weights {json.dumps(result['weights'])}: validation NDCG@20 "
                          f"{result['ndcg@20']:.4f}")
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(result, indent=2) + "\n")

    def _file(self, options: dict[str, Any]) -> dict[str, Any]:
        try:
            dataset = dataset_read(format=options["format"], path=options["events"])
            protocol = offline.DEFAULT_PROTOCOL.get(
                dataset.name, "random" if dataset.events.times is None else "user-time")
            fraction = offline.DEFAULT_FRACTION.get(dataset.name, 0.2)
            split = offline.dataset_split(dataset, protocol=protocol, fraction=fraction, seed=42)
            validation = offline.validation_split(split, protocol=protocol, fraction=fraction,
                                                  seed=42)
            users = offline.test_users(validation, max_users=5000, seed=42)
            weights, score = offline.weights_tune(dataset, validation, users=users,
                                                  progress=self._progress(options))
        except (DatasetError, ValueError) as error:
            raise CommandError(str(error)) from None
        return {"weights": weights, "ndcg@20": score, "validation": validation.description}

    def _site(self, options: dict[str, Any]) -> dict[str, Any]:
        site = Site.objects.filter(public_key=options["site"]).first() or \
            Site.objects.filter(name=options["site"]).first()
        if site is None:
            raise CommandError(f"no site with the public key or name {options['site']!r}")
        try:
            weights, score, params = services.site_weights_tune(
                site=site, placement=options["placement"],
                progress=lambda _, message: self._progress(options)(message))
        except services.TrainingError as error:
            raise CommandError(str(error)) from None
        result: dict[str, Any] = {"weights": weights, "ndcg@20": score, "params": params}
        if options["train"]:
            version = services.site_train(site=site, params=params)
            result["version"] = version.pk
            self.stdout.write(f"{site.name}: version {version.pk} {version.status}")
        return result

    @staticmethod
    def _progress(options: dict[str, Any]) -> Any:
        def report(message: str) -> None:
            if options["verbosity"] > 0:
                print(message, file=sys.stderr, flush=True)
        return report
