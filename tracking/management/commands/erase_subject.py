"""manage.py erase_subject ID [--type user|anon] [--site KEY_OR_NAME] [--export PATH] [--json]"""

import getpass
import json
import shutil

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.models import DataSubjectRequest, Site
from tracking.privacy.exporting import export_path
from tracking.privacy.requests import subject_request_create, subject_request_run
from tracking.validation import Invalid


def site_find(value: str | None) -> Site:
    """The site named by public key, name or id; without one, the only site."""
    sites = Site.objects.all()
    if value is None:
        found = list(sites[:2])
        if len(found) != 1:
            raise CommandError("there are several sites (or none): name one with --site")
        return found[0]
    match = sites.filter(public_key=value) | sites.filter(name=value)
    if value.isdigit():
        match = match | sites.filter(pk=int(value))
    found = list(match.distinct()[:2])
    if len(found) != 1:
        raise CommandError(f"--site {value!r} names {'no' if not found else 'more than one'} site")
    return found[0]


class Command(BaseCommand):
    help = ("Erase everything held about one data subject (events, raw batches, consent, "
            "profile, segments, recommendations state, caches) now, and print the proof.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="the site's user id (or an anon id with --type anon)")
        parser.add_argument("--type", choices=["user", "anon"], default="user", dest="id_type")
        parser.add_argument("--site", help="public key, name or id of the site")
        parser.add_argument("--export", metavar="PATH",
                            help="first write everything held about the subject to PATH")
        parser.add_argument("--json", action="store_true", help="print the proof as JSON")

    def handle(self, *args, **options) -> None:
        site = site_find(options["site"])
        who = f"shell:{getpass.getuser()}"
        if options["export"]:
            export = self.run(site, DataSubjectRequest.Kind.EXPORT, options, who)
            path = export_path(export)
            if path is None:
                raise CommandError(f"the export failed: {export.error}")
            shutil.copyfile(path, options["export"])
            self.stderr.write(f"export written to {options['export']}")
        request = self.run(site, DataSubjectRequest.Kind.ERASE, options, who)
        proof = {"request_id": str(request.pk), "status": request.status,
                 "finished_at": request.finished_at.isoformat() if request.finished_at else None,
                 "counts": request.counts}
        if options["json"]:
            self.stdout.write(json.dumps(proof))
            return
        self.stdout.write(f"erasure {proof['request_id']}: {request.status}")
        for table, rows in request.counts.items():
            self.stdout.write(f"  {table}: {rows}")

    def run(self, site: Site, kind: str, options: dict, who: str) -> DataSubjectRequest:
        try:
            created = subject_request_create(site=site, kind=kind, id_type=options["id_type"],
                                             raw_id=options["id"], requested_by=who,
                                             enqueue=False)
        except Invalid as error:
            raise CommandError(f"{error.field}: {error.detail}") from None
        try:
            return subject_request_run(request_id=str(created.request.pk))
        except Exception as error:
            raise CommandError(f"the {kind} failed: {error}") from error
