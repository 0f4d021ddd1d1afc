"""Fixtures of the serving tests: a trained site, visitors, and committed deliveries."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recommend import catalog, recommending, services, serving
from recommend.models import ModelVersion
from tests.recommend.test_training import GROUPS, behaviour
from tracking.models import Event, Item, Site
from tracking.services import subject_hash

VISITOR = "a_0f8e2d1c-visitor-0001"  # the tracker's ids are random and long
PRICES = [5.0, 15.0, 25.0, 35.0, 45.0]


@pytest.fixture
def fresh_serving(settings, tmp_path: Path) -> Iterator[Path]:
    """A model directory of the test's own, and nothing held in this process."""
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models")}
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()
    yield tmp_path / "models"
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()


def shop_catalog(site: Site) -> None:
    """Four categories of five priced items (the groups the behaviour sticks to)."""
    words = ["tables", "lamps", "blankets", "chairs"]
    Item.objects.bulk_create([
        Item(site=site, external_id=item, title=f"{words[g].title()} no. {i}",
             category=words[g], price=PRICES[i], currency="EUR",
             url=f"https://shop.example/p/{item}")
        for g, group in enumerate(GROUPS) for i, item in enumerate(group)])


@pytest.fixture
def trained(site: Site, fresh_serving) -> ModelVersion:
    """The site with a catalog, learnable behaviour and an active model."""
    shop_catalog(site)
    behaviour(site)
    version = services.site_train(site=site)
    assert version.is_active
    return version


def visit(site: Site, items: list[str], *, anon_id: str = VISITOR, name: str = "view_item",
          minutes_ago: float = 10.0) -> None:
    """Stored events of a visitor (one minute apart, oldest first), as the drain stores them."""
    import uuid

    subject = subject_hash(site=site, kind="a", raw_id=anon_id)
    start = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    Event.objects.bulk_create([
        Event(site=site, event_id=uuid.uuid4(), subject=subject, session="s1", name=name,
              item_id=item, ts=start + timedelta(minutes=step), source="browser")
        for step, item in enumerate(items)])


@pytest.fixture
def deliver(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """Run a callable, then its on-commit callbacks (the drain, events_cleaned), as a real
    commit would."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run
