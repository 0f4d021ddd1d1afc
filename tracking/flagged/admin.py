"""Admin: flagged events, read-only, by reason (to see what the bot rules catch)."""

from django.contrib import admin

from tracking.flagged.models import FlaggedEvent


@admin.register(FlaggedEvent)
class FlaggedEventAdmin(admin.ModelAdmin):
    list_display = ("flagged_at", "site", "reason", "name", "ts", "subject", "user_agent")
    list_filter = ("site", "reason", "name")
    search_fields = ("subject", "user_agent")
    date_hierarchy = "flagged_at"
    readonly_fields = [field.name for field in FlaggedEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
