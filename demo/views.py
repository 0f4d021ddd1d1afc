"""The demo shop's pages: catalog, category, product, cart. Plain Django views; the tracker,
the consent banner and the widgets come from ``{% load recsite %}``."""

import uuid
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from demo.shop import shop_site
from tracking.models import Event, Item, Site

PAGE_SIZE = 24


def _site(request: HttpRequest) -> Site:
    site = shop_site()
    if site is None:
        raise Http404("no demo site: run scripts/demo")
    return site


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    site = context["site"]
    cart = request.session.get("cart", {})
    categories = Item.objects.filter(site=site, available=True).exclude(category="") \
        .values_list("category", flat=True).annotate(n=Count("id")).order_by("category")
    return render(request, template, {**context, "site_key": site.public_key,
                                      "cart_count": sum(cart.values()),
                                      "categories": list(categories)})


def _items(site: Site):
    return Item.objects.filter(site=site, available=True).exclude(price=None)


def home(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    popular = list(Event.objects.filter(site=site, name="purchase").exclude(item_id="")
                   .values("item_id").annotate(n=Count("subject", distinct=True))
                   .order_by("-n", "item_id").values_list("item_id", flat=True)[:12])
    by_id = {item.external_id: item for item in _items(site).filter(external_id__in=popular)}
    return _page(request, "demo/home.html", {
        "site": site, "popular": [by_id[i] for i in popular if i in by_id]})


def category(request: HttpRequest, name: str) -> HttpResponse:
    site = _site(request)
    items = _items(site).filter(category=name).order_by("title")
    if not items.exists():
        raise Http404("no such category")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(request, "demo/category.html", {"site": site, "name": name, "page": page})


def product(request: HttpRequest, item_id: str) -> HttpResponse:
    site = _site(request)
    item = Item.objects.filter(site=site, external_id=item_id).first()
    if item is None:
        raise Http404("no such product")
    ecommerce = {"currency": item.currency or "GBP", "value": item.price,
                 "items": [{"item_id": item.external_id, "item_name": item.title,
                            "item_category": item.category, "price": item.price}]}
    return _page(request, "demo/product.html", {"site": site, "item": item,
                                                "ecommerce": ecommerce})


def cart(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    quantities = request.session.get("cart", {})
    by_id = {item.external_id: item for item in
             Item.objects.filter(site=site, external_id__in=list(quantities))}
    lines = [(by_id[i], n, round((by_id[i].price or 0) * n, 2)) for i, n in quantities.items()
             if i in by_id]
    total = round(sum(amount for _, _, amount in lines), 2)
    ecommerce = {"currency": "GBP", "value": total, "transaction_id": f"demo-{uuid.uuid4()}",
                 "items": [{"item_id": item.external_id, "item_name": item.title,
                            "price": item.price, "quantity": n} for item, n, _ in lines]}
    return _page(request, "demo/cart.html", {"site": site, "lines": lines, "total": total,
                                             "ecommerce": ecommerce,
                                             "thanks": request.GET.get("ordered") == "1"})


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    item_id = request.POST.get("item_id", "")
    if not Item.objects.filter(site=site, external_id=item_id).exists():
        return JsonResponse({"error": "no such product"}, status=404)
    quantities = request.session.get("cart", {})
    quantities[item_id] = quantities.get(item_id, 0) + 1
    request.session["cart"] = quantities
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"cart_count": sum(quantities.values())})
    return redirect("demo:cart")


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = {}
    return redirect("/shop/cart/?ordered=1")
