"""Admin of recommend: model versions with their progress, sites to train on demand,
placements, and experiments with their variants."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from recommend import services, tasks
from recommend.attribution import experiment_results
from recommend.dashboards import dashboard_context
from recommend.models import (
    Attribution,
    Dashboard,
    Experiment,
    ModelVersion,
    Placement,
    TrainingSite,
    Variant,
)
from recommend.query import QueryError
from recommend.recommending import FALLBACKS, PlacementConfig, context_rules_parse


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "site", "status", "is_active", "progress_percent", "stage",
                    "ndcg_at_20", "n_events", "n_items", "training_seconds", "size_mb",
                    "created_at")
    list_filter = ("status", "is_active", "site")
    readonly_fields = [field.name for field in ModelVersion._meta.fields]
    actions = ["activate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training ("Sites to train" or manage.py train)

    @admin.display(description="progress")
    def progress_percent(self, version: ModelVersion) -> str:
        return f"{100 * version.progress:.0f} %"

    @admin.display(description="NDCG@20 (popularity)")
    def ndcg_at_20(self, version: ModelVersion) -> str:
        metrics = version.metrics or {}
        if "ndcg@20" not in metrics:
            return "-"
        return f"{metrics['ndcg@20']:.4f} ({metrics.get('popularity_ndcg@20', 0):.4f})"

    @admin.display(description="MB")
    def size_mb(self, version: ModelVersion) -> str:
        return "-" if version.size_bytes is None else f"{version.size_bytes / 2**20:.1f}"

    @admin.action(description="Make the selected ready version active")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for version in queryset:
            try:
                services.model_version_activate(version=version)
            except ValueError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{version.site}: version {version.pk} is active")


@admin.register(TrainingSite)
class TrainingSiteAdmin(admin.ModelAdmin):
    list_display = ("name", "active_version", "latest_training")
    fields = ("name",)
    readonly_fields = ("name",)
    actions = ["train_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="active version")
    def active_version(self, site: TrainingSite) -> str:
        version = site.model_versions.filter(is_active=True).first()
        return "-" if version is None else f"v{version.pk} ({version.finished_at:%Y-%m-%d %H:%M})"

    @admin.display(description="latest training")
    def latest_training(self, site: TrainingSite) -> str:
        version = site.model_versions.order_by("-created_at", "-id").first()
        if version is None:
            return "never"
        if version.status == ModelVersion.Status.TRAINING:
            return f"v{version.pk} training: {100 * version.progress:.0f} % ({version.stage})"
        return f"v{version.pk} {version.status}"

    @admin.action(description="Train now (a Celery worker trains a new version)")
    def train_now(self, request: HttpRequest, queryset: QuerySet[TrainingSite]) -> None:
        for site in queryset:
            version = services.model_version_create(site=site)
            transaction.on_commit(lambda pk=version.pk: tasks.train_version.delay(pk))
        self.message_user(request, f"queued training for {queryset.count()} site(s)")


class PlacementForm(forms.ModelForm):
    class Meta:
        model = Placement
        exclude: list[str] = []

    def clean_context_rules(self) -> Any:
        rules = self.cleaned_data["context_rules"]
        try:
            context_rules_parse(rules)
        except QueryError as error:
            raise forms.ValidationError(f"{error.field}: {error.detail}") from None
        return rules

    def clean_fallback(self) -> Any:
        chain = self.cleaned_data["fallback"]
        if not isinstance(chain, list) or any(step not in FALLBACKS for step in chain):
            raise forms.ValidationError(f"a list of {', '.join(FALLBACKS)}")
        return chain

    def clean_weights(self) -> Any:
        weights = self.cleaned_data["weights"]
        if not isinstance(weights, dict) or any(
                key not in ("knn", "content", "popularity", "session") or
                not isinstance(value, int | float) or value < 0
                for key, value in weights.items()):
            raise forms.ValidationError("knn, content, popularity and session: weights >= 0")
        return weights


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    form = PlacementForm
    list_display = ("name", "site", "title", "strategy", "limit", "diversity", "is_active")
    list_filter = ("site", "strategy", "is_active")
    fieldsets = [
        (None, {"fields": ["site", "name", "title", "is_active"]}),
        ("What to recommend", {"fields": ["strategy", "weights", "limit", "fallback"]}),
        ("Business rules", {"fields": [
            "exclude_purchased", "exclude_seen_days", "only_available", "include_categories",
            "exclude_categories", "price_min", "price_max"]}),
        ("Diversity, rotation and context", {"fields": [
            "diversity", "diversity_lambda", "category_cap", "rotation_rate", "rotation_hours",
            "context_rules"]}),
    ]


class VariantForm(forms.ModelForm):
    class Meta:
        model = Variant
        exclude: list[str] = []

    def clean_overrides(self) -> Any:
        overrides = self.cleaned_data["overrides"]
        if not isinstance(overrides, dict):
            raise forms.ValidationError("an object of placement settings")
        try:
            PlacementConfig(name="check").overridden(overrides)
        except TypeError as error:
            raise forms.ValidationError(str(error)) from None
        return overrides


class VariantInline(admin.TabularInline):
    model = Variant
    form = VariantForm
    extra = 0
    fields = ("name", "weight", "is_control", "is_holdout", "overrides")


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "site", "placement", "allocation", "is_active", "started_at")
    list_filter = ("site", "is_active", "allocation")
    readonly_fields = ("started_at", "bandit_weights", "bandit_updated_at", "results")
    inlines = [VariantInline]

    @admin.display(description="results")
    def results(self, experiment: Experiment) -> SafeString:
        if experiment.pk is None:
            return SafeString("-")
        return render_to_string("admin/recommend/experiment_results.html",
                                {"result": experiment_results(experiment=experiment)})


@admin.register(Attribution)
class AttributionAdmin(admin.ModelAdmin):
    list_display = ("ts", "kind", "placement", "variant", "model_version", "item_id", "value")
    list_filter = ("kind", "placement", "variant", "site")
    # The subject hash is personal data: the detail page, open to any staff with the view
    # permission, leaves it out (tracking.view_personal_data guards pages that show it).
    readonly_fields = [field.name for field in Attribution._meta.fields
                       if field.name != "subject"]
    exclude = ("subject",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """One page of charts per site (choose the site and the days)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        sites = list(Dashboard.objects.order_by("name"))
        chosen = request.GET.get("site", "")
        site = next((s for s in sites if str(s.pk) == chosen), sites[0] if sites else None)
        try:
            days = min(max(int(request.GET.get("days", 30)), 1), 365)
        except ValueError:
            days = 30
        context = {**self.admin_site.each_context(request), "title": "Dashboard",
                   "sites": sites, "days": days}
        if site is None:
            return TemplateResponse(request, "admin/recommend/dashboard_empty.html", context)
        context.update(dashboard_context(site=site, days=days))
        return TemplateResponse(request, "admin/recommend/dashboard.html", context)
