"""The admin dashboards: charts drawn from local markup (inline SVG), figures beside them."""

from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.models import Segment
from recommend import charts
from recommend.models import Attribution, Placement
from tracking.models import DailyCount

pytestmark = pytest.mark.django_db


def attribution_rows(site, experiment=None):
    now = timezone.now()
    rows = []
    for n in range(30):
        variant = "b" if n % 2 else "a"
        rows.append(Attribution(site=site, event_pk=n, kind="impression", ts=now,
                                placement="home", variant=variant, issued_at=now,
                                experiment_id=experiment.pk if experiment else None,
                                subject="s", model_version=1))
        if n % 3 == 0:
            rows.append(Attribution(site=site, event_pk=1000 + n, kind="click", ts=now,
                                    placement="home", variant=variant, issued_at=now,
                                    experiment_id=experiment.pk if experiment else None,
                                    subject="s", model_version=1))
    Attribution.objects.bulk_create(rows)


def test_the_dashboard_draws_every_chart_without_a_script(admin_client, site, trained):
    placement = Placement.objects.create(site=site, name="home")
    experiment = placement.experiments.create(site=site, name="A <b>B</b>", slug="ab")
    experiment.variants.create(name="a", is_control=True)
    experiment.variants.create(name="b")
    attribution_rows(site, experiment)
    DailyCount.objects.bulk_create([
        DailyCount(site=site, day=date.today(), outcome="stored", count=120),
        DailyCount(site=site, day=date.today(), outcome="bot_user_agent", count=7)])
    Segment.objects.create(site=site, name="Lamp lovers", slug="lamp-lovers", size=42)
    page = admin_client.get(reverse("admin:recommend_dashboard_changelist"),
                            {"site": site.pk}).content.decode()
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 4
    assert '<script src="http' not in page and "cdn" not in page.lower()  # all local
    assert "Click-through rate per day" in page and "bot_user_agent" in page
    assert "Lamp lovers (rule)" in page and f"v{trained.pk}" in page
    assert "A &lt;b&gt;B&lt;/b&gt;" in page  # names are escaped
    assert "too few to conclude" in page  # 15 impressions per variant
    change = admin_client.get(reverse("admin:recommend_experiment_change",
                                      args=[experiment.pk])).content.decode()
    assert "P(beats control)" in change and "Chi-square" in change


def test_the_dashboard_without_data_says_so(admin_client, site):
    page = admin_client.get(reverse("admin:recommend_dashboard_changelist")).content.decode()
    assert "No recommendation impressions" in page and "No model trained yet" in page


def test_charts_escape_labels_and_scale_to_the_data():
    svg = charts.line_chart("CTR <x>", ["a", "b"], {"<script>": [0.1, 0.2]})
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "CTR &lt;x&gt;" in svg
    bars = charts.stacked_bars("t", ["d1", "d2"], {"stored": [10, 20], "noise": [5, 0]})
    assert bars.count("<rect") == 3 + 2  # three bars, two legend keys
    assert charts.hbars("t", [("x", 1.0), ("y", 2.0)]).count("<rect") == 2
