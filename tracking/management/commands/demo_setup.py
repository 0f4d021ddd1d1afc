"""manage.py demo_setup [--port 8000] [--data FILE]: the demo site, an admin, the sample data.

Safe to run again: the site and the admin are created once (the secrets are
printed only then), the import runs until it has once finished.
"""

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.models import Site
from tracking.services import site_create

SITE_NAME = "Demo gift shop"
ADMIN_USERNAME = "admin"
SAMPLE = Path(settings.BASE_DIR) / "demo" / "data" / "Online_Retail_sample40k.csv.gz"
# The sample's purchases date from 2010-2011: a retention shorter than their age
# would let the hourly purge delete all of them.
DEMO_RETENTION_DAYS = 10_000


class Command(BaseCommand):
    help = ("Set up the demo: the site 'Demo gift shop', an admin user (its random password "
            "is printed once) and the Online Retail sample, imported once.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000,
                            help="the port the demo server listens on (for the site's origin)")
        parser.add_argument("--data", type=Path, default=SAMPLE,
                            help="the Online Retail file to import")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["data"].is_file():
            raise CommandError(f"{options['data']} is missing: the demo imports that file")
        self.stdout.write(f"Data directory: {settings.DATA_DIR}")
        site = self.site_ensure(origin=f"http://127.0.0.1:{options['port']}")
        self.admin_ensure()
        self.sample_import(site=site, path=options["data"], verbosity=options["verbosity"])

    def site_ensure(self, *, origin: str) -> Site:
        site = Site.objects.filter(name=SITE_NAME).order_by("pk").first()
        if site is None:
            created = site_create(name=SITE_NAME, origins=[origin],
                                  retention_days=DEMO_RETENTION_DAYS)
            site = created.site
            self.stdout.write(self.style.SUCCESS(f"Created the site {SITE_NAME!r}"))
            self.stdout.write(f"  public key: {site.public_key}")
            self.stdout.write(f"  secret key: {created.secret_key}   (shown once)")
        elif origin not in site.allowed_origins:
            site.allowed_origins = [*site.allowed_origins, origin]
            site.save(update_fields=["allowed_origins"])
            self.stdout.write(f"Site {SITE_NAME!r}: origin {origin} added")
        else:
            self.stdout.write(f"Site {SITE_NAME!r} exists (public key {site.public_key})")
        return site

    def admin_ensure(self) -> None:
        users = get_user_model().objects
        if users.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"Admin user {ADMIN_USERNAME!r} exists (its password was printed "
                              f"on the first run; reset it with manage.py changepassword "
                              f"{ADMIN_USERNAME})")
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser(username=ADMIN_USERNAME, email="", password=password)
        self.stdout.write(self.style.SUCCESS(
            f"Created the admin user {ADMIN_USERNAME!r} with the password {password}   "
            "(shown once: note it now)"))

    def sample_import(self, *, site: Site, path: Path, verbosity: int) -> None:
        # Written only after a finished import, so an interrupted one runs again.
        marker = Path(settings.DATA_DIR) / "demo-import.json"
        if marker.is_file() and json.loads(marker.read_text()).get("site") == site.public_key:
            self.stdout.write(f"Sample already imported ({path.name})")
            return
        self.stdout.write(f"Importing {path.name} (UCI Online Retail, CC BY 4.0) ...")
        call_command("import_events", str(path), format="online-retail", site=site.public_key,
                     verbosity=verbosity)
        marker.write_text(json.dumps({"site": site.public_key, "file": path.name}))
