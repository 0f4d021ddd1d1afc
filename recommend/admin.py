"""Admin of recommend: model versions with their progress, and sites to train on demand."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from recommend import services, tasks
from recommend.models import ModelVersion, TrainingSite


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
