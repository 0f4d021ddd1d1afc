"""Admin building blocks for personal data: the permission gate, the audit log of views,
and the search that hashes a typed id the way storage does. Other apps' admins use them."""

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from tracking.models import Site
from tracking.privacy.audit import access_log, actor_of, may_see_personal_data
from tracking.privacy.subjects import ID_KINDS, subject_hashes

MAX_LOGGED_SUBJECTS = 20


def typed_id_hashes(term: str) -> set[str]:
    """Every subject hash a typed id may stand for: user or anon id, on every site, under the
    current and the retired keys."""
    term = term.strip()
    if not term or len(term) > 200:
        return set()
    hashes: set[str] = set()
    for site in Site.objects.only("pk", "subject_salt"):
        for id_type in ID_KINDS:
            hashes.update(subject_hashes(site=site, id_type=id_type, raw_id=term))
    return hashes


class PersonalDataAdmin(admin.ModelAdmin):
    """A model admin of personal data: visible only with tracking.view_personal_data, every
    list, search and object view written to the audit log, ids typed into search hashed.

    ``subject_fields`` names the columns holding subject hashes.
    """

    subject_fields: tuple[str, ...] = ("subject",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_personal_data(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_see_personal_data(request.user) and super().has_view_permission(request, obj)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        hashes = typed_id_hashes(search_term)
        if hashes:
            match = Q()
            for name in self.subject_fields:
                match |= Q(**{f"{name}__in": hashes})
            found = found | queryset.filter(match)
        request._personal_data_search = found  # for the audit entry of this view
        return found, duplicates

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        response = super().changelist_view(request, extra_context)
        if getattr(response, "status_code", 200) == 200:
            self.log_list(request)
        return response

    def log_list(self, request: HttpRequest) -> None:
        target = self.model._meta.label
        searched = getattr(request, "_personal_data_search", None)
        term = request.GET.get("q", "")
        if not term or searched is None:
            filters = {k: v for k, v in request.GET.items() if k not in ("q", "p", "o")}
            subject = next((v for k, v in filters.items() if k in self.subject_fields), "")
            access_log(actor=actor_of(request), action="view_list", target=target,
                       subject=subject, detail={"filters": sorted(filters)})
            return
        subjects = set()
        for name in self.subject_fields:
            subjects |= set(searched.exclude(**{name: None}).exclude(**{name: ""})
                            .values_list(name, flat=True).distinct()[:MAX_LOGGED_SUBJECTS])
        # The typed term may be a raw id: it is not logged, the subjects it found are.
        for subject in sorted(subjects)[:MAX_LOGGED_SUBJECTS] or [""]:
            access_log(actor=actor_of(request), action="search", target=target,
                       subject=subject, detail={"found_subjects": len(subjects)})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.get_object(request, object_id)
        if obj is not None and getattr(response, "status_code", 200) == 200:
            access_log(actor=actor_of(request), action="view", target=self.model._meta.label,
                       object_id=str(object_id), site=getattr(obj, "site_id", None),
                       subject=self.subject_of(obj))
        return response

    def subject_of(self, obj: Any) -> str:
        for name in self.subject_fields:
            value = getattr(obj, name, "")
            if value:
                return value
        return ""
