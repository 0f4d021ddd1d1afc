"""Pages for the browser tests: a shop page embedding {% recsite_tracker %}, and a plain page.

Query parameters: site (the public key), flush (the tracker's data-flush-ms) and
tracker=0 for the same page without the tracker.
"""

from csp.decorators import csp_exempt
from django.http import HttpRequest, HttpResponse
from django.template import engines

SHOP = """{% load recsite %}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Desk lamp</title>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag() { dataLayer.push(arguments); }
  dataLayer.push({event: "view_item", ecommerce: {currency: "EUR", value: 19.9,
    items: [{item_id: "sku-1", item_name: "Desk lamp", item_category: "lamps", price: "19.90"}]}});
</script>
{% if tracker %}{% recsite_tracker key=site flush_ms=flush %}{% endif %}
</head>
<body>
  <h1>Desk lamp</h1>
  <button id="add" type="button">Add to cart</button>
  <button id="settings" type="button" data-recsite-consent-open>Privacy settings</button>
  <div style="height: 1500px">Description</div>
  <section id="recs" data-recsite-placement="product" data-rec-token="tok-abc">
    <a href="/test/plain/?item=sku-7" data-recsite-item="sku-7">Lamp shade</a>
    <a href="/test/plain/?item=sku-8" data-recsite-item="sku-8">Bulb</a>
  </section>
  <div style="height: 300px"></div>
  <script>
    document.getElementById("add").addEventListener("click", function () {
      dataLayer.push({ecommerce: null});
      dataLayer.push({event: "add_to_cart", ecommerce: {currency: "EUR", value: 19.9,
        items: [{item_id: "sku-1", item_name: "Desk lamp", price: 19.9, quantity: 1}]}});
    });
  </script>
</body></html>
"""

PLAIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Plain</title></head>
<body><p>A page without the tracker.</p></body></html>"""


@csp_exempt()  # a site owner's page, with its own inline scripts and styles
def shop(request: HttpRequest) -> HttpResponse:
    page = engines["django"].from_string(SHOP)
    context = {"site": request.GET.get("site", ""), "flush": request.GET.get("flush"),
               "tracker": request.GET.get("tracker") != "0"}
    return HttpResponse(page.render(context, request))


@csp_exempt()
def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PLAIN)
