"""URLs of the demo shop, mounted under /shop/."""

from django.urls import path

from demo import views

app_name = "demo"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/<str:name>/", views.category, name="category"),
    path("p/<str:item_id>/", views.product, name="product"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("cart/checkout/", views.checkout, name="checkout"),
]
