"""Profiles on the embedded default (SQLite, tasks in-process): the portable paths agree too."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, math
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from io import StringIO
from profiles.models import Profile, SiteState
from profiles.services import profiles_recompute, profiles_rescore
from tests.profiles.conftest import MOVIELENS, RETAIL, floats_snapshot, profile_snapshot
from tracking.importers import events_import
from tracking.services import site_create

assert settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
call_command("migrate", verbosity=0)
created = site_create(name="Embedded", origins=["https://shop.example"])
site = created.site
SiteState.objects.create(site=site, clock_mode="data")
events_import(site=site, format="online-retail", path=RETAIL)  # signal -> eager task
events_import(site=site, format="movielens", path=MOVIELENS)
incremental_count = Profile.objects.filter(site=site).count()
profiles_rescore(site_id=site.pk)
before, before_floats = profile_snapshot(site), floats_snapshot(site)
profiles_recompute(site_id=site.pk)
after, after_floats = profile_snapshot(site), floats_snapshot(site)
floats_equal = before_floats.keys() == after_floats.keys() and all(
    math.isclose(before_floats[s][k], after_floats[s].get(k, math.nan), rel_tol=1e-9,
                 abs_tol=1e-9)
    for s in before_floats for k in before_floats[s])
out = StringIO()
call_command("rebuild_profiles", "--verbosity", "0", stdout=out)
response = Client(HTTP_HOST="localhost").get(
    "/api/v1/subjects/movielens-1/profile", HTTP_AUTHORIZATION=f"Bearer {created.secret_key}")
print(json.dumps({"profiles": incremental_count, "equal": before == after,
                  "floats_equal": floats_equal, "rebuild": out.getvalue().strip(),
                  "status": response.status_code,
                  "events": response.json().get("events")}))
"""


def test_profiles_on_the_embedded_default(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(RECSITE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="recsite.settings",
               PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["profiles"] > 150  # the retail customers and five MovieLens users
    assert data["equal"] and data["floats_equal"]
    assert "profiles from 785 events" in data["rebuild"]
    assert data["status"] == 200 and data["events"] > 0
