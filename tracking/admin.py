"""Admin for sites, consent, the outbox, events, daily counts and items."""

from django.contrib import admin, messages
from django.utils.html import format_html

from tracking.models import ConsentReceipt, ConsentRecord, DailyCount, Event, Item, RawBatch, Site
from tracking.services import site_create, site_rotate_secret


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are evidence or history: viewable, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "public_key", "secret_key_hint", "origins", "retention_days",
                    "require_consent", "is_active", "created_at")
    readonly_fields = ("public_key", "secret_key_hint", "created_at")
    fields = ("name", "public_key", "secret_key_hint", "allowed_origins", "retention_days",
              "require_consent", "is_active", "created_at")
    actions = ["rotate_secret_key"]

    @admin.display(description="allowed origins")
    def origins(self, obj: Site) -> str:
        return ", ".join(obj.allowed_origins or []) or "-"

    def save_model(self, request, obj: Site, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = site_create(name=obj.name, origins=obj.allowed_origins or [],
                              retention_days=obj.retention_days,
                              require_consent=obj.require_consent)
        obj.pk = created.site.pk
        obj.__dict__.update(created.site.__dict__)
        messages.warning(request, format_html(
            "Secret key of {}: <code>{}</code> (shown once; store it now).",
            obj.name, created.secret_key))

    @admin.action(description="Rotate the secret key (shown once)")
    def rotate_secret_key(self, request, queryset) -> None:
        for site in queryset:
            key = site_rotate_secret(site=site)
            messages.warning(request, format_html(
                "New secret key of {}: <code>{}</code> (shown once).", site.name, key))


@admin.register(ConsentReceipt)
class ConsentReceiptAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "site", "subject", "analytics", "personalization", "source",
                    "banner_version")
    list_filter = ("site", "source", "analytics", "personalization")
    search_fields = ("subject", "user_subject", "receipt_id")
    date_hierarchy = "recorded_at"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # append-only proof; erasure goes through erase_subject


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("site", "subject", "analytics", "personalization", "updated_at")
    list_filter = ("site", "analytics", "personalization")
    search_fields = ("subject",)


@admin.register(RawBatch)
class RawBatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "site", "source", "received_at", "n_events", "rejected", "processed_at")
    list_filter = ("site", "source", ("processed_at", admin.EmptyFieldListFilter))
    date_hierarchy = "received_at"


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("ts", "site", "name", "item_id", "subject", "session", "value", "source")
    list_filter = ("site", "name", "source")
    search_fields = ("subject", "user_subject", "item_id", "event_id")
    date_hierarchy = "ts"
    show_full_result_count = False  # a COUNT(*) over a big event table is slow


@admin.register(DailyCount)
class DailyCountAdmin(ReadOnlyAdmin):
    list_display = ("day", "site", "outcome", "count")
    list_filter = ("site", "outcome")
    date_hierarchy = "day"


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "title", "category", "price", "available", "site")
    list_filter = ("site", "available", "category")
    search_fields = ("external_id", "title", "description")
