"""URLs of the recommend API, mounted under /api/v1/."""

from django.urls import path

from recommend.api import (
    ItemsUpsertApi,
    RecommendationsApi,
    SimilarItemsApi,
    UserRecommendationsApi,
)

urlpatterns = [
    path("recommendations", RecommendationsApi.as_view(), name="recommendations"),
    path("items", ItemsUpsertApi.as_view(), name="items-upsert"),
    path("items/<str:item_id>/similar", SimilarItemsApi.as_view(), name="similar-items"),
    path("users/<str:user_id>/recommendations", UserRecommendationsApi.as_view(),
         name="user-recommendations"),
]
