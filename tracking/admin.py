"""Admin for sites, consent, the outbox, events, daily counts, items, and privacy:
data subject requests, banner versions and the audit log of personal data.

Personal data (subjects, events, consent, requests) needs the permission
tracking.view_personal_data; staff without it see sites, items and daily counts.
"""

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from tracking.models import (
    BannerVersion,
    ConsentReceipt,
    ConsentRecord,
    DailyCount,
    DataSubjectRequest,
    Event,
    Item,
    PersonalDataAccess,
    RawBatch,
    Site,
)
from tracking.privacy.adminkit import PersonalDataAdmin
from tracking.privacy.audit import access_log, actor_of, may_see_personal_data
from tracking.privacy.erasure import erasure_transaction
from tracking.privacy.exporting import export_path
from tracking.privacy.keys import subject_key_rotate
from tracking.privacy.requests import subject_request_create, subject_request_retry
from tracking.privacy.subjects import raw_id_clean
from tracking.services import site_create, site_rotate_secret
from tracking.validation import Invalid


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
    actions = ["rotate_secret_key", "rotate_subject_key"]

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

    @admin.action(description="Rotate the subject key (new pseudonyms from now on)")
    def rotate_subject_key(self, request, queryset) -> None:
        for site in queryset:
            retired = subject_key_rotate(site=site)
            access_log(actor=actor_of(request), action="rotate_subject_key",
                       target="tracking.Site", object_id=str(site.pk), site=site)
            messages.warning(request, format_html(
                "{}: new subject key. Visitors get new pseudonyms, so change the consent "
                "banner's version to ask them again. The old key is kept for erasure and "
                "export until {}.", site.name, f"{retired.forget_after:%Y-%m-%d}"))

    # Consent receipts and the audit log refuse deletes except inside erasure: deleting a
    # site erases every subject of it.
    def delete_model(self, request, obj: Site) -> None:
        with erasure_transaction():
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with erasure_transaction():
            super().delete_queryset(request, queryset)


def receipts_csv(receipts) -> HttpResponse:
    """Receipts as CSV, one row each, with the subject's current state."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="consent-receipts.csv"'
    writer = csv.writer(response)
    writer.writerow(["receipt_id", "site", "subject", "user_subject", "analytics",
                     "personalization", "source", "banner_version", "client_ts", "recorded_at"])
    for r in receipts.select_related("site").order_by("recorded_at"):
        writer.writerow([r.receipt_id, r.site.name, r.subject, r.user_subject or "",
                         r.analytics, r.personalization, r.source, r.banner_version,
                         r.client_ts.isoformat() if r.client_ts else "",
                         r.recorded_at.isoformat()])
    return response


@admin.register(ConsentReceipt)
class ConsentReceiptAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    list_display = ("recorded_at", "site", "subject", "analytics", "personalization", "source",
                    "banner_version", "current_state", "history")
    list_filter = ("site", "source", "analytics", "personalization", "banner_version")
    search_fields = ("=subject", "=user_subject", "receipt_id__exact")
    search_help_text = ("A user id or anon id (hashed as storage does), a subject hash or a "
                        "receipt id.")
    subject_fields = ("subject", "user_subject")
    date_hierarchy = "recorded_at"
    readonly_fields = ("receipt_id", "site", "subject", "user_subject", "analytics",
                       "personalization", "source", "banner_version", "banner_texts",
                       "client_ts", "recorded_at", "current_state")
    actions = ["export_csv"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # append-only proof (a trigger on PostgreSQL); erasure removes them

    @admin.display(description="current state")
    def current_state(self, obj: ConsentReceipt) -> str:
        record = ConsentRecord.objects.filter(site_id=obj.site_id, subject=obj.subject).first()
        if record is None:
            return "-"
        granted = [p for p in ("analytics", "personalization") if getattr(record, p)]
        return f"{', '.join(granted) or 'nothing'} (since {record.updated_at:%Y-%m-%d %H:%M})"

    @admin.display(description="history")
    def history(self, obj: ConsentReceipt) -> str:
        url = reverse("admin:tracking_consentreceipt_changelist")
        return format_html('<a href="{}?subject={}">all receipts</a>', url, obj.subject)

    @admin.display(description="banner texts shown")
    def banner_texts(self, obj: ConsentReceipt) -> str:
        versions = BannerVersion.objects.filter(site_id=obj.site_id, version=obj.banner_version)
        if not versions:
            return "(no texts recorded for this version)"
        return format_html_join("", "<p><b>{}</b><br>{}</p>", (
            (v.language or "default", " | ".join(f"{k}: {t}" for k, t in v.texts.items()))
            for v in versions))

    @admin.action(description="Export the selected receipts as CSV")
    def export_csv(self, request, queryset) -> HttpResponse:
        subjects = set(queryset.values_list("subject", flat=True).distinct()[:21])
        for subject in sorted(subjects)[:20] if len(subjects) <= 20 else [""]:
            access_log(actor=actor_of(request), action="export_csv",
                       target="tracking.ConsentReceipt", subject=subject,
                       detail={"receipts": queryset.count()})
        return receipts_csv(queryset)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    list_display = ("site", "subject", "analytics", "personalization", "updated_at", "receipt")
    list_filter = ("site", "analytics", "personalization")
    search_fields = ("=subject",)
    search_help_text = "A user id or anon id (hashed as storage does), or a subject hash."


@admin.register(RawBatch)
class RawBatchAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    list_display = ("id", "site", "source", "received_at", "n_events", "rejected", "processed_at")
    list_filter = ("site", "source", ("processed_at", admin.EmptyFieldListFilter))
    date_hierarchy = "received_at"
    subject_fields = ()


@admin.register(Event)
class EventAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    list_display = ("ts", "site", "name", "item_id", "subject", "session", "value", "source")
    list_filter = ("site", "name", "source")
    search_fields = ("=subject", "=user_subject", "=item_id", "event_id__exact")
    search_help_text = "A user id or anon id (hashed as storage does), a subject hash, an item."
    subject_fields = ("subject", "user_subject")
    date_hierarchy = "ts"
    show_full_result_count = False  # a COUNT(*) over a big event table is slow


@admin.register(BannerVersion)
class BannerVersionAdmin(admin.ModelAdmin):
    """The texts each banner version showed; recorded when first rendered, or added here
    for a banner of your own. Never edited: a new text is a new version."""

    list_display = ("site", "version", "language", "first_shown_at", "receipts")
    list_filter = ("site",)
    search_fields = ("version",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="receipts")
    def receipts(self, obj: BannerVersion) -> int:
        return ConsentReceipt.objects.filter(site_id=obj.site_id,
                                             banner_version=obj.version).count()


class SubjectRequestForm(forms.ModelForm):
    """A new request: the id is typed, hashed and never stored."""

    raw_id = forms.CharField(label="id", max_length=200,
                             help_text="The site's user id, or the visitor's anon id.")
    confirm = forms.BooleanField(required=False, label="I confirm this erasure",
                                 help_text="Required for an erasure: it cannot be undone.")

    class Meta:
        model = DataSubjectRequest
        fields = ("site", "kind", "id_type")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("kind") == DataSubjectRequest.Kind.ERASE and not data.get("confirm"):
            raise ValidationError({"confirm": "Tick to confirm the erasure."})
        if data.get("raw_id") is not None and data.get("id_type"):
            try:
                raw_id_clean(data["raw_id"], data["id_type"])
            except Invalid as error:
                raise ValidationError({"raw_id": error.detail}) from None
        return data


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(PersonalDataAdmin):
    list_display = ("request_id", "site", "kind", "status", "requested_by", "requested_at",
                    "finished_at", "download")
    list_filter = ("site", "kind", "status")
    search_fields = ("request_id__exact", "=subject")
    subject_fields = ("subject",)
    date_hierarchy = "requested_at"
    actions = ["retry"]
    readonly_fields = ("request_id", "site", "kind", "id_type", "status", "requested_by",
                       "requested_at", "finished_at", "proof", "error", "download",
                       "export_bytes", "export_expires_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SubjectRequestForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("site", "kind", "id_type", "raw_id", "confirm")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_add_permission(self, request) -> bool:
        return may_see_personal_data(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the proof stays

    def save_model(self, request, obj: DataSubjectRequest, form, change) -> None:
        try:
            made = subject_request_create(
                site=form.cleaned_data["site"], kind=form.cleaned_data["kind"],
                id_type=form.cleaned_data["id_type"], raw_id=form.cleaned_data["raw_id"],
                requested_by=actor_of(request))
        except Invalid as error:
            raise PermissionDenied(error.detail) from None  # the form checked the id already
        obj.pk = made.request.pk
        obj.__dict__.update(made.request.__dict__)
        if not made.created:
            messages.info(request, "A pending request for this subject existed: it is reused.")

    def save_related(self, request, form, formsets, change) -> None:
        pass  # nothing related; the request was made by the service

    @admin.display(description="proof (rows per table)")
    def proof(self, obj: DataSubjectRequest) -> str:
        if not obj.counts:
            return "-"
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><td>{}</td><td>{}</td></tr>", sorted(obj.counts.items())))

    @admin.display(description="export")
    def download(self, obj: DataSubjectRequest) -> str:
        if obj.kind != DataSubjectRequest.Kind.EXPORT or not obj.export_file:
            return "-"
        url = reverse("admin:tracking_datasubjectrequest_download", args=[obj.pk])
        return format_html('<a href="{}">download</a>', url)

    @admin.action(description="Retry the selected failed requests")
    def retry(self, request, queryset) -> None:
        for subject_request in queryset.filter(status=DataSubjectRequest.Status.FAILED):
            subject_request_retry(request=subject_request)
            access_log(actor=actor_of(request), action="retry_request",
                       target="tracking.DataSubjectRequest", object_id=str(subject_request.pk),
                       site=subject_request.site_id, subject=subject_request.subject)

    def get_urls(self):
        return [path("<uuid:request_id>/download/", self.admin_site.admin_view(self.download_view),
                     name="tracking_datasubjectrequest_download"), *super().get_urls()]

    def download_view(self, request: HttpRequest, request_id) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        subject_request = get_object_or_404(DataSubjectRequest, pk=request_id)
        file = export_path(subject_request)
        if file is None:
            raise PermissionDenied("this export has expired")
        access_log(actor=actor_of(request), action="download_export",
                   target="tracking.DataSubjectRequest", object_id=str(subject_request.pk),
                   site=subject_request.site_id, subject=subject_request.subject)
        return FileResponse(file.open("rb"), as_attachment=True, filename=file.name)


@admin.register(PersonalDataAccess)
class PersonalDataAccessAdmin(PersonalDataAdmin, ReadOnlyAdmin):
    """The audit log: read-only, never deleted (a trigger on PostgreSQL)."""

    list_display = ("at", "actor", "action", "target", "object_id", "site", "subject")
    list_filter = ("action", "target")
    search_fields = ("actor", "=object_id", "=subject")
    date_hierarchy = "at"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def log_list(self, request: HttpRequest) -> None:
        access_log(actor=actor_of(request), action="view_list",
                   target="tracking.PersonalDataAccess")


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
