"""Smoke test of the embedded default: no DATABASE_URL, no REDIS_URL (SQLite, eager tasks)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, uuid, datetime
import django
django.setup()
from django.conf import settings
from django.test import Client
from django.core.management import call_command
from io import StringIO
from tracking.models import Event

assert settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), settings.DATABASES
assert settings.CELERY_TASK_ALWAYS_EAGER
call_command("migrate", verbosity=0)
out = StringIO()
call_command("create_site", "Smoke", "--origin", "https://smoke.example", "--json", stdout=out)
keys = json.loads(out.getvalue())
client = Client(HTTP_HOST="localhost", HTTP_ORIGIN="https://smoke.example")
now = datetime.datetime.now(datetime.UTC).isoformat()
consent = {"site": keys["public_key"], "anon_id": "a1", "purposes": {"analytics": True}}
assert client.post("/api/v1/consent", json.dumps(consent), content_type="text/plain"
                   ).status_code == 201
event = {"event_id": str(uuid.uuid4()), "name": "view_item", "ts": now, "anon_id": "a1",
         "items": [{"item_id": "sku-9"}]}
body = {"site": keys["public_key"], "sent_at": now, "events": [event]}
response = client.post("/api/v1/collect", json.dumps(body), content_type="text/plain")
assert response.status_code == 202, response.content
# Eager mode: the event is processed in-process, within the request.
print(json.dumps({"events": list(Event.objects.values_list("item_id", flat=True)),
                  "health": client.get("/healthz").json()}))
"""


def test_embedded_default_runs_without_services(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(RECSITE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="recsite.settings")
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["events"] == ["sku-9"]
    assert data["health"]["status"] == "ok"
    assert (tmp_path / "recsite.sqlite3").exists()
