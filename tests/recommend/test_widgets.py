"""The {% recommendations %} widget: markup the tracker reads, accessible, escaped."""

import pytest
from django.template import engines
from django.test import RequestFactory

from recommend.tokens import token_read
from tests.recommend.conftest import VISITOR, visit
from tests.recommend.test_training import GROUPS
from tracking.models import Item

pytestmark = pytest.mark.django_db


def render(source: str, *, cookies: dict | None = None, **context) -> str:
    request = RequestFactory().get("/")
    request.COOKIES.update(cookies or {})
    return engines["django"].from_string("{% load recsite %}" + source).render(context, request)


def test_the_widget_carries_what_the_tracker_reads(site, trained, api):
    api.consent(VISITOR, personalization=True)
    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    html = render('{% recommendations placement="home" limit=3 key=key %}',
                  cookies={"rs_aid": VISITOR}, key=site.public_key)
    assert 'data-recsite-placement="home"' in html
    token = html.split('data-rec-token="', 1)[1].split('"', 1)[0]
    shown = token_read(token).items
    assert len(shown) == 3 and set(shown) <= set(GROUPS[1])
    for item in shown:
        assert f'data-recsite-item="{item}"' in html
        assert f'data-recsite-dismiss="{item}"' in html
    assert "Because you viewed Lamps no." in html and "EUR" in html
    assert 'aria-labelledby="recsite-home-title"' in html and 'id="recsite-home-title"' in html
    assert 'aria-label="Not interested in Lamps no.' in html
    assert html.count("widget.js") == 1 and "widget.css" in html


def test_item_text_is_escaped(site, trained):
    Item.objects.filter(site=site).update(title='<script>alert("x")</script> & co')
    html = render('{% recommendations placement="home" key=key %}', key=site.public_key)
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_assets_once_per_page_and_a_title_of_our_own(site, trained):
    html = render('{% recommendations placement="home" key=key title="For you" %}'
                  '{% recommendations placement="product" key=key %}', key=site.public_key)
    assert html.count("widget.css") == 1 and ">For you</h2>" in html
    assert html.count("<section") == 2


def test_a_template_of_the_sites_own(site, trained, tmp_path, settings):
    (tmp_path / "mine.html").write_text("{% for item in items %}[{{ item.item_id }}]{% endfor %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    html = render('{% recommendations placement="home" limit=2 key=key template="mine.html" %}',
                  key=site.public_key)
    assert html.count("[") == 2


def test_without_a_site_the_page_still_renders(db):
    assert render('{% recommendations placement="home" key="pk_live_none" %}').strip() == ""
