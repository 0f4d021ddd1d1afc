"""manage.py create_site NAME --origin URL [--origin URL ...] [--json]"""

import json
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.services import site_create


def origin(value: str) -> str:
    """An origin: scheme://host[:port], or '*' for any."""
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise CommandError(f"--origin {value!r} is not an origin such as https://shop.example")
    return f"{parts.scheme}://{parts.netloc}"


class Command(BaseCommand):
    help = "Create a site and print its public and secret keys (the secret is shown only now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--origin", action="append", default=[], dest="origins",
                            help="an origin allowed to send events; repeat for more")
        parser.add_argument("--retention-days", type=int, default=395)
        parser.add_argument("--no-consent-required", action="store_true",
                            help="store events without a consent record (where the law allows)")
        parser.add_argument("--json", action="store_true",
                            help='print {"public_key": ..., "secret_key": ...} only')

    def handle(self, *args, **options) -> None:
        origins = [origin(value) for value in options["origins"]]
        created = site_create(name=options["name"], origins=origins,
                              retention_days=options["retention_days"],
                              require_consent=not options["no_consent_required"])
        keys = {"public_key": created.site.public_key, "secret_key": created.secret_key}
        if options["json"]:
            self.stdout.write(json.dumps(keys))
            return
        self.stdout.write(self.style.SUCCESS(f"Created site {created.site.name!r}"))
        self.stdout.write(f"  public key: {keys['public_key']}   (in your pages)")
        self.stdout.write(f"  secret key: {keys['secret_key']}   (server side only; shown once)")
        if not origins:
            self.stdout.write(self.style.WARNING(
                "  No --origin given: browsers cannot send events until you add one in the admin."))
