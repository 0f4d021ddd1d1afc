"""manage.py create_site, with and without --json, and the Site model's keys."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tracking.models import Site
from tracking.services import secret_key_hash


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_site", *args, stdout=out)
    return out.getvalue()


def test_json_prints_both_keys_and_stores_only_the_secret_hash(db):
    keys = json.loads(run("Shop", "--origin", "https://shop.example/", "--json"))
    assert set(keys) == {"public_key", "secret_key"}
    site = Site.objects.get()
    assert site.public_key == keys["public_key"] and keys["public_key"].startswith("pk_live_")
    assert site.secret_key_hash == secret_key_hash(keys["secret_key"])
    assert keys["secret_key"] not in json.dumps(list(Site.objects.values()), default=str)
    assert site.allowed_origins == ["https://shop.example"]
    assert site.retention_days == 395 and site.require_consent


def test_human_output_shows_the_secret_once(db):
    out = run("Shop", "--origin", "https://a.example", "--origin", "http://localhost:8000")
    assert "sk_live_" in out and "shown once" in out
    assert Site.objects.get().allowed_origins == ["https://a.example", "http://localhost:8000"]


@pytest.mark.parametrize("bad", ["shop.example", "ftp://x.example", "https://x.example/path"])
def test_bad_origin_is_a_clear_error(db, bad):
    with pytest.raises(CommandError, match="is not an origin"):
        run("Shop", "--origin", bad)
    assert not Site.objects.exists()


def test_two_sites_get_different_keys_and_salts(db):
    a = json.loads(run("A", "--json"))
    b = json.loads(run("B", "--json"))
    assert a["public_key"] != b["public_key"] and a["secret_key"] != b["secret_key"]
    salts = set(Site.objects.values_list("subject_salt", flat=True))
    assert len(salts) == 2


def test_rotating_the_secret_key_invalidates_the_old_one(db):
    from tracking.services import site_create, site_rotate_secret

    created = site_create(name="Shop", origins=[])
    new_key = site_rotate_secret(site=created.site)
    site = Site.objects.get()
    assert site.secret_key_hash == secret_key_hash(new_key) != secret_key_hash(created.secret_key)
    assert site.secret_key_hint == new_key[:12]
