"""Admin: a subject's page, search by raw id, rule segments defined without code, charts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Condition, Membership, Profile, Segment, SegmentSize
from profiles.services import profiles_rescore
from tests.profiles.conftest import import_slice
from tracking.services import subject_hash

pytestmark = pytest.mark.django_db


def condition_form(**fields: str) -> dict[str, str]:
    data = {"conditions-TOTAL_FORMS": "1", "conditions-INITIAL_FORMS": "0",
            "conditions-MIN_NUM_FORMS": "0", "conditions-MAX_NUM_FORMS": "1000",
            "conditions-0-group": "1", "conditions-0-min_count": "1", "conditions-0-op": "gte"}
    data.update({f"conditions-0-{name}": value for name, value in fields.items()})
    return data


@pytest.fixture
def retail(site, deliver, data_clock):
    import_slice(deliver, site, "online-retail")
    profiles_rescore(site_id=site.pk)
    return site


def test_a_subject_page_shows_rfm_segments_and_recent_events(admin_client, retail):
    profile = Profile.objects.filter(site=retail, purchases__gt=0).order_by("-events").first()
    segment = Segment.objects.create(site=retail, name="Regulars", slug="regulars")
    Membership.objects.create(segment=segment, site=retail, subject=profile.subject,
                              since=timezone.now())

    page = admin_client.get(f"/admin/profiles/profile/{profile.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "RFM and lifecycle" in html and profile.rfm_segment in html
    assert "Regulars" in html and "current" in html
    assert "purchase" in html and html.count("<td>purchase</td>") >= min(profile.events, 30)


def test_profiles_are_found_by_the_sites_raw_user_id(admin_client, retail):
    expected = subject_hash(site=retail, kind="u", raw_id="retail-17841")
    assert Profile.objects.filter(subject=expected).exists()

    page = admin_client.get("/admin/profiles/profile/", {"q": "retail-17841"})

    assert page.status_code == 200
    assert expected[:12] in page.content.decode()


def test_a_rule_segment_defined_in_the_admin_is_evaluated(admin_client, retail,
                                                          django_capture_on_commit_callbacks):
    form = {"site": str(retail.pk), "name": "Best customers", "slug": "best", "is_active": "on",
            "description": "", **condition_form(kind="rfm", values="Champions, Loyal")}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/profiles/segment/add/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    segment = Segment.objects.get(slug="best")
    assert Condition.objects.get(segment=segment).values == ["Champions", "Loyal"]
    expected = set(Profile.objects.filter(site=retail, rfm_segment__in=["Champions", "Loyal"])
                   .values_list("subject", flat=True))
    assert expected and set(Membership.objects.filter(segment=segment)
                            .values_list("subject", flat=True)) == expected


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "rfm", "values": "Champions, Whales"}, "Not one of"),
    ({"kind": "metric", "metric": "monetary"}, "Needed for a"),
    ({"kind": "affinity", "category": "lamps", "number": "3"}, "between 0 and 1"),
])
def test_a_wrong_condition_is_refused_with_a_reason(admin_client, site, fields, message):
    form = {"site": str(site.pk), "name": "X", "slug": "x", **condition_form(**fields)}

    response = admin_client.post("/admin/profiles/segment/add/", form)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Segment.objects.filter(slug="x").exists()


def test_segments_list_and_page_chart_their_size(admin_client, site):
    segment = Segment.objects.create(site=site, name="Lamp lovers", slug="lamp-lovers", size=7)
    now = timezone.now()
    SegmentSize.objects.bulk_create([SegmentSize(segment=segment, at=now - timedelta(hours=h),
                                                 size=s) for h, s in [(3, 2), (2, 5), (1, 7)]])

    listing = admin_client.get("/admin/profiles/segment/").content.decode()
    page = admin_client.get(f"/admin/profiles/segment/{segment.pk}/change/").content.decode()

    assert "Lamp lovers" in listing and "<polyline" in listing
    assert "<polyline" in page and "from 0 to 7, now 7" in page


def test_line_chart_scales_time_left_to_right_and_values_up():
    from datetime import UTC, datetime

    from profiles.charts import line_chart

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    chart = line_chart([(t0, 0), (t0 + timedelta(hours=1), 10), (t0 + timedelta(hours=3), 5)],
                       width=104, height=54, pad=2)
    assert chart.points == "2.0,52.0 35.3,2.0 102.0,27.0"
    assert (chart.low, chart.high, chart.last) == (0, 10, 5)
