"""Admin: profiles (a subject's page), rule segments defined without code, sizes over time."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q
from django.utils.html import format_html

from profiles import charts, rfm, rules
from profiles.models import (
    Condition,
    IdentityLink,
    Membership,
    Profile,
    Segment,
    SiteState,
)
from profiles.selectors import (
    membership_history,
    profile_recent_events,
    segment_size_series,
    subject_segments,
)
from profiles.state import affinity_normalized
from tracking.models import Site
from tracking.privacy.adminkit import PersonalDataAdmin
from tracking.services import subject_hash


class ReadOnlyAdmin(admin.ModelAdmin):
    """Derived records: viewable, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- profiles ----------------------------------------------------------------------


@admin.register(Profile)
class ProfileAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    list_display = ("short_subject", "site", "identified", "events", "sessions", "purchases",
                    "monetary", "rfm_segment", "stage", "last_seen")
    list_filter = ("site", "stage", "rfm_segment", "identified")
    search_fields = ("subject",)
    search_help_text = "A subject hash, or a site's raw user id or anon id (hashed for you)."
    show_full_result_count = False
    fields = ("site", "subject", "identified", "aliases", "first_seen", "last_seen",
              "last_purchase", "events", "sessions", "active_days", "purchases", "monetary",
              "updated_at")
    change_form_template = "admin/profiles/profile/change_form.html"

    @admin.display(description="subject", ordering="subject")
    def short_subject(self, obj: Profile) -> str:
        return obj.subject[:12] + "…"

    def get_search_results(self, request, queryset, search_term: str):
        found, distinct = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            hashes = {subject_hash(site=site, kind=kind, raw_id=term)
                      for site in Site.objects.all() for kind in ("u", "a")}
            linked = IdentityLink.objects.filter(anon_subject__in=hashes) \
                .values_list("user_subject", flat=True)
            found |= queryset.filter(Q(subject__in=hashes) | Q(subject__in=linked))
        return found, distinct

    def change_view(self, request, object_id, form_url="", extra_context=None):
        profile = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if profile is not None:
            extra.update(subject_page_context(profile))
        return super().change_view(request, object_id, form_url, extra_context=extra)


def subject_page_context(profile: Profile) -> dict[str, Any]:
    """What a subject's admin page shows besides the fields."""
    total_devices = sum(profile.devices.values())
    return {
        "rfm": {"r": profile.r_score, "f": profile.f_score, "m": profile.m_score,
                "segment": profile.rfm_segment, "stage": profile.get_stage_display()},
        "affinity": [(category, round(score, 3), round(score * 100))
                     for category, score in list(affinity_normalized(profile.affinity).items())
                     [:12]],
        "devices": [(device, round(100 * n / total_devices)) for device, n in
                    sorted(profile.devices.items(), key=lambda kv: -kv[1])],
        "by_type": sorted(profile.by_type.items(), key=lambda kv: -kv[1]),
        "avg_engaged_seconds": round(profile.avg_engaged_seconds, 1),
        "current_segments": subject_segments(site=profile.site, subject=profile.subject),
        "memberships": membership_history(site=profile.site, subject=profile.subject),
        "recent_events": profile_recent_events(profile=profile),
    }


# --- segments ----------------------------------------------------------------------


class ListField(forms.CharField):
    """A list of names typed as comma-separated text."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(map(str, value)) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        return [part.strip() for part in (value or "").split(",") if part.strip()]


class ConditionForm(forms.ModelForm):
    values = ListField(required=False, help_text="rfm, stage: comma-separated, e.g. "
                                                 "Champions, Loyal")

    class Meta:
        model = Condition
        fields = ("group", "kind", "negate", "event_name", "item_id", "category", "min_count",
                  "within_hours", "values", "days", "metric", "op", "number")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        required = {rules.LAST_SEEN: ["days"], rules.METRIC: ["metric", "number"],
                    rules.AFFINITY: ["category", "number"], rules.RFM_SEGMENT: ["values"],
                    rules.STAGE: ["values"]}.get(kind, [])
        for name in required:
            if data.get(name) in (None, "", []):
                self.add_error(name, f"Needed for a '{kind}' condition.")
        allowed = {rules.RFM_SEGMENT: [s.value for s in rfm.Segment],
                   rules.STAGE: [s.value for s in rfm.Stage]}.get(kind)
        if allowed is not None:
            unknown = [v for v in data.get("values") or [] if v not in allowed]
            if unknown:
                self.add_error("values", f"Not one of {', '.join(allowed)}: "
                                         f"{', '.join(unknown)}.")
        if kind == rules.AFFINITY and data.get("number") is not None and \
                not 0 <= data["number"] <= 1:
            self.add_error("number", "Affinity is between 0 and 1.")
        if kind == rules.EVENTS and not data.get("min_count"):
            self.add_error("min_count", "At least one event.")
        return data


class ConditionInline(admin.TabularInline):
    model = Condition
    form = ConditionForm
    extra = 1


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "site", "kind", "size", "silhouette_shown", "trend",
                    "is_active", "updated_at")
    list_filter = ("site", "kind", "is_active")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("kind", "size", "silhouette_shown", "chart")
    inlines = [ConditionInline]

    def get_fields(self, request, obj=None):
        if obj is not None and obj.kind == Segment.Kind.CLUSTER:
            return ("site", "name", "slug", "kind", "description", "size", "silhouette_shown",
                    "chart", "is_active")
        return ("site", "name", "slug", "kind", "description", "is_active", "size", "chart")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.kind == Segment.Kind.CLUSTER:
            return (*self.readonly_fields, "site", "description")  # the refit writes these
        return self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is not None and obj.kind == Segment.Kind.CLUSTER else self.inlines

    @admin.display(description="silhouette", ordering="silhouette")
    def silhouette_shown(self, obj: Segment) -> str:
        return "-" if obj.silhouette is None else f"{obj.silhouette:.3f}"

    @admin.display(description="size, last 90 days")
    def trend(self, obj: Segment) -> str:
        chart = charts.line_chart(segment_size_series(segment=obj), width=120, height=24, pad=2)
        if not chart.points:
            return "-"
        return format_html(
            '<svg width="{}" height="{}" role="img" aria-label="size over time">'
            '<polyline points="{}" fill="none" stroke="#417690" stroke-width="1.5"/></svg>',
            chart.width, chart.height, chart.points)

    @admin.display(description="size over time")
    def chart(self, obj: Segment) -> str:
        chart = charts.line_chart(segment_size_series(segment=obj))
        if not chart.points:
            return "No points yet: sizes are recorded by the segment sweep, hourly."
        return format_html(
            '<svg width="{w}" height="{h}" role="img" aria-label="size over time" '
            'style="background:#f8f8f8"><polyline points="{p}" fill="none" stroke="#417690" '
            'stroke-width="2"/></svg><div>{start} .. {end}: from {low} to {high}, now {last}</div>',
            w=chart.width, h=chart.height, p=chart.points, low=chart.low, high=chart.high,
            start=f"{chart.start:%Y-%m-%d %H:%M}", end=f"{chart.end:%Y-%m-%d %H:%M}",
            last=chart.last)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        segment = form.instance
        if segment.kind == Segment.Kind.RULE and segment.is_active:
            from profiles.tasks import evaluate_segment

            transaction.on_commit(lambda: evaluate_segment.delay(segment.pk))
            messages.info(request, f"{segment.name}: members are being evaluated.")


@admin.register(Membership)
class MembershipAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    list_display = ("subject", "segment", "site", "since", "until")
    list_filter = ("site", "segment", ("until", admin.EmptyFieldListFilter))
    search_fields = ("subject",)
    show_full_result_count = False


@admin.register(IdentityLink)
class IdentityLinkAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    subject_fields = ("anon_subject", "user_subject")
    list_display = ("anon_subject", "user_subject", "site", "day", "created_at")
    list_filter = ("site",)
    search_fields = ("anon_subject", "user_subject")


@admin.register(SiteState)
class SiteStateAdmin(admin.ModelAdmin):
    list_display = ("site", "clock_mode", "clock", "rfm_mode", "cuts_at", "recomputed_at",
                    "clusters_at", "cluster_silhouette")
    fields = ("site", "clock_mode", "clock", "watermark", "rfm_mode", "rfm_cuts", "cuts_at",
              "recomputed_at", "clusters_at", "cluster_silhouette")
    readonly_fields = ("site", "clock", "watermark", "rfm_mode", "rfm_cuts", "cuts_at",
                       "recomputed_at", "clusters_at", "cluster_silhouette")
    actions = ["recompute_now", "refit_clusters_now"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Recompute profiles, segments and clusters now")
    def recompute_now(self, request, queryset) -> None:
        from profiles.tasks import rebuild

        for state in queryset:
            rebuild.delay(state.site_id)
        messages.info(request, f"Recompute enqueued for {queryset.count()} site(s).")

    @admin.action(description="Refit clusters now")
    def refit_clusters_now(self, request, queryset) -> None:
        from profiles.tasks import refit_clusters

        for state in queryset:
            refit_clusters.delay(state.site_id)
        messages.info(request, f"Cluster refit enqueued for {queryset.count()} site(s).")
