"""manage.py rebuild_profiles [--site KEY] [--clock wall|data] [--no-clusters]"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from profiles.models import Profile, SiteState
from profiles.selectors import site_summary
from profiles.services import profiles_rebuild
from tracking.models import Event, Site


class Command(BaseCommand):
    help = (
        "Recompute every profile of a site (or of every site) from its events: RFM cut points "
        "and scores, lifecycle stages, rule segment memberships and K-Means clusters. Profiles "
        "also update as events arrive; this is the full recompute the scheduler runs nightly. "
        "Use --verbosity 0 to hide the progress bar."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--site", help="public key or name of one site (default: all)")
        parser.add_argument(
            "--clock", choices=[c.value for c in SiteState.Clock],
            help="what 'now' is for the site from here on: 'wall' (a live site) or 'data' "
                 "(its latest event: for imported history, whose visitors would all look "
                 "churned by the wall clock)")
        parser.add_argument("--no-clusters", action="store_true", help="skip the K-Means refit")

    def handle(self, *args: Any, **options: Any) -> None:
        for site in self._sites(options["site"]):
            if options["clock"]:
                SiteState.objects.update_or_create(site=site,
                                                   defaults={"clock_mode": options["clock"]})
            self._rebuild(site, options)

    def _sites(self, value: str | None) -> list[Site]:
        if value is None:
            return list(Site.objects.order_by("pk"))
        sites = list(Site.objects.filter(public_key=value)) or \
            list(Site.objects.filter(name=value))
        if len(sites) != 1:
            raise CommandError(f"{len(sites)} sites have the public key or name {value!r}; "
                               "give a site's public key")
        return sites

    def _rebuild(self, site: Site, options: dict[str, Any]) -> None:
        bar = None
        if options["verbosity"] > 0:
            bar = tqdm(total=Event.objects.filter(site=site).count(), unit=" rows",
                       desc=f"profiles of {site.name}", file=sys.stderr, mininterval=0.5,
                       dynamic_ncols=True)
        try:
            result = profiles_rebuild(site_id=site.pk, refit_clusters=not options["no_clusters"],
                                      progress=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        clusters = {None: "clusters not refitted", 0: "no clusters (too few profiles)"}.get(
            result.clusters, f"{result.clusters} clusters")
        self.stdout.write(
            f"{site.name}: {result.profiles} profiles from {result.events} events in "
            f"{result.seconds:.1f} s; {result.segment_changes} rule segment membership "
            f"changes; {clusters}")
        if options["verbosity"] > 0:
            self._summary(site)

    def _summary(self, site: Site) -> None:
        summary = site_summary(site=site)
        self.stdout.write("  RFM segments: " + (", ".join(
            f"{name} {n:,}" for name, n in summary.rfm_segments.items()) or "none scored"))
        self.stdout.write("  lifecycle:    " + ", ".join(
            f"{Profile.Stage(stage).label} {n:,}" for stage, n in summary.stages.items()))
        for segment in summary.segments:
            quality = "" if segment.silhouette is None else \
                f", silhouette {segment.silhouette:.2f}"
            self.stdout.write(f"  {segment.kind:7} {segment.name}: {segment.size:,}{quality}")
