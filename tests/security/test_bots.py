"""Bot filtering: a labelled corpus of real user agents, and what happens to bots' events
(kept apart with the reason, counted, never trained on)."""

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recommend import services as recommend_services
from tests.conftest import BrowserApi, iso
from tests.recommend.conftest import shop_catalog
from tests.recommend.test_training import GROUPS, behaviour
from tracking.flagged.models import FlaggedEvent
from tracking.models import DailyCount, Event
from tracking.processing import is_crawler
from tracking.services import site_create, subject_hash

DATA = Path(__file__).resolve().parents[1] / "data" / "user_agents"
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def corpus(name: str) -> list[str]:
    """The user agents of one file (see tests/data/README.md), one a line."""
    with gzip.open(DATA / name, "rt", encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines if line.strip()]


@pytest.mark.parametrize(("name", "size"), [
    ("crawlerdetect_crawlers.txt.gz", 3730),
    ("crawler_user_agents_instances.txt.gz", 2118),  # labelled by another project
])
def test_at_least_99_percent_of_bots_are_flagged(name, size):
    bots = corpus(name)
    assert len(bots) == size
    missed = [ua for ua in bots if not is_crawler(ua)]
    assert len(missed) <= 0.01 * len(bots), (len(missed), missed[:20])


def test_at_most_half_a_percent_of_browsers_are_flagged():
    browsers = corpus("crawlerdetect_devices_every25th.txt.gz")
    assert len(browsers) == 6626
    flagged = [ua for ua in browsers if is_crawler(ua)]
    assert len(flagged) <= 0.005 * len(browsers), (len(flagged), flagged[:20])


def _views(anon_id: str, items: list[str], *, start: datetime, step: timedelta) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), "name": "view_item", "ts": iso(start + n * step),
             "anon_id": anon_id, "items": [{"item_id": item}]} for n, item in enumerate(items)]


@pytest.fixture
def open_site(db, settings, tmp_path):
    """A site that needs no consent (to keep the test to the bot rules), with a model."""
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models")}
    created = site_create(name="Shop", origins=["https://shop.example"], require_consent=False)
    shop_catalog(created.site)
    behaviour(created.site)
    return BrowserApi(created)


def test_bots_events_are_kept_apart_with_the_reason_and_never_trained_on(
        open_site, django_capture_on_commit_callbacks):
    site = open_site.site
    before = recommend_services.site_train(site=site)
    start = datetime.now(UTC) - timedelta(minutes=5)
    person = _views("a_person-000000000001", GROUPS[0][:3], start=start,
                    step=timedelta(seconds=20))
    crawler = _views("a_crawler-00000000001", GROUPS[1] * 2, start=start,
                     step=timedelta(seconds=30))
    # 12 events within one second: over the 10-a-second rule.
    burst = _views("a_scraper-00000000001", (GROUPS[2] * 3)[:12], start=start,
                   step=timedelta(milliseconds=50))
    for events, agent in [(person, BROWSER_UA), (crawler, BOT_UA), (burst, BROWSER_UA)]:
        with django_capture_on_commit_callbacks(execute=True):  # the drain, as on commit
            assert open_site.collect(events, HTTP_USER_AGENT=agent).status_code == 202

    flagged = FlaggedEvent.objects.filter(site=site)
    by_reason = {reason: sorted(flagged.filter(reason=reason).values_list("event_id", flat=True))
                 for reason in ("bot_user_agent", "bot_rate")}
    assert by_reason["bot_user_agent"] == sorted(uuid.UUID(e["event_id"]) for e in crawler)
    assert by_reason["bot_rate"] == sorted(uuid.UUID(e["event_id"]) for e in burst)
    assert set(flagged.filter(reason="bot_user_agent").values_list("user_agent", flat=True)) \
        == {BOT_UA}
    crawler_subject = subject_hash(site=site, kind="a", raw_id="a_crawler-00000000001")
    row = flagged.filter(reason="bot_user_agent").first()
    assert row.subject == crawler_subject and row.name == "view_item"
    assert "a_crawler" not in str(row.event)  # subject hashes only, never the raw id
    stored = set(Event.objects.filter(site=site, source="browser")
                 .values_list("event_id", flat=True))
    assert stored == {uuid.UUID(e["event_id"]) for e in person}
    counts = dict(DailyCount.objects.filter(site=site).values_list("outcome", "count"))
    assert counts["bot_user_agent"] == len(crawler) and counts["bot_rate"] == len(burst)

    # Processing the same batches again keeps each flagged event once.
    from tracking.models import RawBatch
    from tracking.processing import raw_batches_process

    raw_batches_process(batches=list(RawBatch.objects.filter(site=site)))
    assert flagged.count() == len(crawler) + len(burst)

    after = recommend_services.site_train(site=site)
    assert (after.n_events, after.n_subjects) == (before.n_events + len(person),
                                                  before.n_subjects + 1)


def test_a_subjects_flagged_events_go_with_erasure_and_come_with_export(
        open_site, django_capture_on_commit_callbacks):
    from tracking.privacy.erasure import subjects_erase
    from tracking.privacy.exporting import subjects_export

    site = open_site.site
    crawler = _views("a_crawler-00000000002", GROUPS[1][:3], start=datetime.now(UTC),
                     step=timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert open_site.collect(crawler, HTTP_USER_AGENT=BOT_UA).status_code == 202
    subject = subject_hash(site=site, kind="a", raw_id="a_crawler-00000000002")
    exported = subjects_export(site=site, subjects={subject})
    assert len(exported["tables"]["tracking_flagged.FlaggedEvent"]) == 3, exported.keys()
    counts = subjects_erase(site=site, subjects={subject})
    assert counts["tracking_flagged.FlaggedEvent"] == 3
    assert not FlaggedEvent.objects.filter(site=site).exists()
