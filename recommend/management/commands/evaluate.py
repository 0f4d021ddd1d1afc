"""manage.py evaluate --format F --events PATH [--json OUT]: offline quality of every model."""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommend.datasets import FORMATS, DatasetError, dataset_read
from recommend.offline import PROTOCOLS, evaluation_run, report_table

MODELS = ("popularity", "item_knn", "content", "session", "hybrid")


class Command(BaseCommand):
    help = (
        "Measure the recommendation models on a data set file, read directly (no database). "
        "Protocols: user-time (each user's last fraction of events by time; the default where "
        "there are timestamps), global-time (one time cut), random (a seeded random fraction of "
        "each user's items; the default for npz). Ground truth: held-out items the user did "
        "not have in training; ranking over all items except the training ones. Prints "
        "Recall, NDCG, HitRate and catalog coverage at 10 and 20, fit seconds and peak memory "
        "(traced allocations) per model; --json writes them too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--events", required=True, help="the file, or for movielens the "
                                                            "ml-latest-small directory")
        parser.add_argument("--json", dest="json_path", help="write the results here as JSON")
        parser.add_argument("--protocol", choices=PROTOCOLS)
        parser.add_argument("--fraction", type=float,
                            help="share held out (default 0.1 for movielens, else 0.2)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--max-users", type=int, default=20_000,
                            help="evaluate a seeded sample of this many test users (0: all)")
        parser.add_argument("--models", default=",".join(MODELS),
                            help=f"comma-separated, from {', '.join(MODELS)}")
        parser.add_argument("--no-tune", action="store_true",
                            help="blend the hybrid with default weights instead of tuning them "
                                 "on a validation split of the training data")

    def handle(self, *args: Any, **options: Any) -> None:
        models = [name.strip() for name in options["models"].split(",") if name.strip()]
        unknown = sorted(set(models) - set(MODELS))
        if unknown or not models:
            raise CommandError(f"--models: unknown {', '.join(unknown) or '(none given)'}; "
                               f"choose from {', '.join(MODELS)}")
        fraction = options["fraction"]
        if fraction is not None and not 0 < fraction < 1:
            raise CommandError("--fraction must be between 0 and 1")
        if options["max_users"] < 0:
            raise CommandError("--max-users must be 0 (all) or more")

        def progress(message: str) -> None:
            if options["verbosity"] > 0:
                print(message, file=sys.stderr, flush=True)

        try:
            progress(f"reading {options['events']} ...")
            dataset = dataset_read(format=options["format"], path=options["events"])
            report = evaluation_run(dataset, protocol=options["protocol"], fraction=fraction,
                                    seed=options["seed"], max_users=options["max_users"] or None,
                                    models=models, tune=not options["no_tune"],
                                    progress=progress)
        except (DatasetError, ValueError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(report_table(report))
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(report, indent=2) + "\n")
            progress(f"wrote {options['json_path']}")
