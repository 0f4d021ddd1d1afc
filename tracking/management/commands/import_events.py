"""manage.py import_events --format online-retail|movielens|retailrocket PATH [--site KEY]"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tracking.importers import FORMATS, ImportInputError, ImportSummary, events_import
from tracking.models import Site


def site_for_import(value: str | None) -> Site:
    """The site named by public key or name; with none given, the only site there is."""
    if value is not None:
        site = Site.objects.filter(public_key=value).first()
        matches = [site] if site else list(Site.objects.filter(name=value))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise CommandError(f"{len(matches)} sites are named {value!r}; give a public key: "
                               f"{_listing(matches)}")
        raise CommandError(f"no site has the public key or name {value!r}. "
                           f"Sites: {_listing(list(Site.objects.order_by('name')))}")
    sites = list(Site.objects.order_by("name")[:21])
    if len(sites) == 1:
        return sites[0]
    if not sites:
        raise CommandError('no site yet: create one with manage.py create_site "My shop" '
                           "--origin https://shop.example, then import into it")
    raise CommandError(f"there are several sites; choose one with --site: {_listing(sites)}")


def _listing(sites: list[Site]) -> str:
    shown = ", ".join(f"{site.name!r} ({site.public_key})" for site in sites[:20])
    return shown + (", ..." if len(sites) > 20 else "") if sites else "none"


class Command(BaseCommand):
    help = (
        "Import historical events and the item catalog from a file in a public data set "
        "layout: online-retail (UCI Online Retail .csv or .csv.gz), movielens (the "
        "ml-latest-small directory) or retailrocket (Kaggle's events.csv). Events take the "
        "API's path (validation, pseudonymous subjects, the outbox, cleaning); importing a "
        "file again stores nothing twice. Consent is NOT checked: an import is the operator's "
        "own historical record, for which the operator answers. Use --verbosity 0 to hide "
        "the progress bar."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the file, or for movielens the directory")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--site", help="public key or name of the site (needed when there "
                                           "is more than one)")

    def handle(self, *args: Any, **options: Any) -> None:
        site = site_for_import(options["site"])
        progress = None
        if options["verbosity"] > 0:
            def progress(**kwargs: Any) -> tqdm:
                return tqdm(file=sys.stderr, mininterval=0.5, dynamic_ncols=True, **kwargs)
        try:
            summary = events_import(site=site, format=options["format"], path=options["path"],
                                    progress=progress)
        except ImportInputError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(summary_text(summary, site=site))


def summary_text(summary: ImportSummary, *, site: Site) -> str:
    """The summary as aligned lines, every reason spelled out."""

    def reasons(counts: dict[str, int]) -> str:
        return f"  ({', '.join(f'{k} {v:,}' for k, v in sorted(counts.items()))})" if counts else ""

    lines = [
        f"Imported {summary.format} into {site.name!r} in {summary.seconds:.1f} s",
        f"  rows read          {summary.rows_read:>10,}",
        f"  rows skipped       {sum(summary.skipped.values()):>10,}{reasons(summary.skipped)}",
        f"  events rejected    {sum(summary.rejected.values()):>10,}{reasons(summary.rejected)}",
        f"  events accepted    {summary.accepted:>10,}",
        f"    stored           {summary.stored:>10,}",
        f"    duplicates       {summary.duplicates:>10,}",
        f"    dropped          {sum(summary.dropped.values()):>10,}{reasons(summary.dropped)}",
    ]
    if summary.processed_elsewhere:
        lines.append(f"    by a worker      {summary.processed_elsewhere:>10,}  (counted in the "
                     "site's daily totals)")
    lines.append(f"  items upserted     {summary.items_upserted:>10,}")
    if summary.older_than_retention:
        lines.append(
            f"Warning: {summary.older_than_retention:,} events are older than this site's "
            f"retention ({site.retention_days} days): the retention purge deletes them. Raise "
            "the site's retention days in the admin to keep them."
        )
    return "\n".join(lines)
