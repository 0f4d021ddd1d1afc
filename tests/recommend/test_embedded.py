"""Serving in the embedded default (SQLite, Django's local-memory cache, eager tasks):
the visitor's views, consent and dismissals reach their recommendations there too."""

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
from django.core.management import call_command
from django.test import Client
from recommend.services import site_train
from tests.recommend.conftest import shop_catalog
from tests.recommend.test_training import GROUPS, behaviour
from tracking.models import Site

assert settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
call_command("migrate", verbosity=0)
from tracking.services import site_create
created = site_create(name="Embedded", origins=["https://shop.example"])
site = created.site
shop_catalog(site)
behaviour(site)
assert site_train(site=site).is_active
client = Client(HTTP_HOST="localhost", HTTP_ORIGIN="https://shop.example")
anon = "a_embedded-visitor-0001"
consent = {"site": site.public_key, "anon_id": anon,
           "purposes": {"analytics": True, "personalization": True}}
assert client.post("/api/v1/consent", json.dumps(consent), content_type="text/plain"
                   ).status_code == 201
url = f"/api/v1/recommendations?site={site.public_key}&anon_id={anon}&placement=home&limit=3"
cold = client.get(url).json()
now = datetime.datetime.now(datetime.UTC).isoformat()
events = [{"event_id": str(uuid.uuid4()), "name": "view_item", "ts": now, "anon_id": anon,
           "items": [{"item_id": item}]} for item in GROUPS[1][:2]]
body = {"site": site.public_key, "sent_at": now, "events": events}
assert client.post("/api/v1/collect", json.dumps(body), content_type="text/plain"
                   ).status_code == 202
warm = client.get(url).json()
print(json.dumps({"cold": [i["reason"]["kind"] for i in cold["items"]],
                  "warm": [i["item_id"] for i in warm["items"]],
                  "reasons": [i["reason"]["kind"] for i in warm["items"]]}))
"""


def test_recommendations_follow_views_in_the_embedded_default(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(RECSITE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="recsite.settings")
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(data["cold"]) <= {"trending", "popular"}
    assert data["reasons"] == ["because_viewed"] * 3
    assert set(data["warm"]) <= {f"sku-1-{i}" for i in range(2, 5)}
