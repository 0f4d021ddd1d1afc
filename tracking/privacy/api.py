"""HTTP endpoints for data subject requests (the site's secret key as a Bearer token).

``DELETE /api/v1/subjects/{id}`` queues an erasure; ``GET /api/v1/subjects/{id}/export``
returns the export (waiting a moment for it, else 202: ask again); ``GET
/api/v1/subject-requests/{request_id}`` tells a request's status and proof. ``{id}`` is the
site's user id, or an anon id with ``?type=anon``; it is hashed as collect hashes it.
"""

import time
import uuid

from django.http import FileResponse, HttpResponse
from django.utils.encoding import escape_uri_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.authentication import site_for_secret_key
from tracking.conf import tracking_settings
from tracking.errors import ApiError
from tracking.models import DataSubjectRequest, Site
from tracking.privacy.audit import access_log
from tracking.privacy.exporting import export_path
from tracking.privacy.requests import subject_request_create
from tracking.privacy.subjects import ID_KINDS, raw_id_clean, subject_hashes
from tracking.serializers import ErrorSerializer
from tracking.validation import Invalid

_TYPE = OpenApiParameter("type", str, enum=list(ID_KINDS), default="user",
                         description="whether the id in the path is a user id or an anon id")
_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="not an id, or an unknown type"),
    401: OpenApiResponse(ErrorSerializer, description="unknown secret key"),
    404: OpenApiResponse(ErrorSerializer, description="no such request for this subject"),
}


class InvalidParameter(ApiError):
    default_code = "invalid"


class RequestNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class ExportFailed(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "export_failed"


class RequestOutSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=DataSubjectRequest.Kind.values)
    status = serializers.ChoiceField(choices=DataSubjectRequest.Status.values)
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="rows deleted (erase) or exported per table")
    error = serializers.CharField(allow_blank=True)


def request_out(request: DataSubjectRequest) -> dict:
    return RequestOutSerializer({
        "request_id": request.request_id, "kind": request.kind, "status": request.status,
        "requested_at": request.requested_at, "finished_at": request.finished_at,
        "counts": request.counts, "error": request.error}).data


def api_actor(site: Site) -> str:
    return f"api:{site.secret_key_hint}"


class _SubjectApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def id_type(self, request: Request) -> str:
        id_type = request.query_params.get("type", "user")
        if id_type not in ID_KINDS:
            raise InvalidParameter("type must be user or anon", field="type")
        return id_type

    def create(self, request: Request, subject_id: str, kind: str) -> DataSubjectRequest:
        site = site_for_secret_key(request)
        try:
            return subject_request_create(site=site, kind=kind, id_type=self.id_type(request),
                                          raw_id=subject_id,
                                          requested_by=api_actor(site)).request
        except Invalid as error:
            raise InvalidParameter(error.detail, field="id" if error.field == "id"
                                   else error.field) from None


class SubjectEraseApi(_SubjectApi):
    """Erase everything held about a subject (queued; the answer carries the request id)."""

    @extend_schema(parameters=[_TYPE], responses={202: RequestOutSerializer, **_ERRORS},
                   tags=["privacy"])
    def delete(self, request: Request, subject_id: str) -> Response:
        subject_request = self.create(request, subject_id, DataSubjectRequest.Kind.ERASE)
        subject_request.refresh_from_db()  # run already, when tasks run in-process
        return Response(request_out(subject_request), status=202, headers={
            "Location": f"/api/v1/subject-requests/{subject_request.pk}"})


class SubjectExportApi(_SubjectApi):
    """Every row held about a subject, as JSON (a ZIP when large); 202 while it is made."""

    @extend_schema(
        parameters=[_TYPE, OpenApiParameter(
            "request", OpenApiTypes.UUID,
            description="the request id a 202 answer gave: its export")],
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT,
                                                              description="the export"),
                   (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY,
                                                             description="a large export"),
                   202: RequestOutSerializer, **_ERRORS,
                   503: OpenApiResponse(ErrorSerializer, description="the export failed")},
        tags=["privacy"])
    def get(self, request: Request, subject_id: str) -> HttpResponse:
        asked = request.query_params.get("request")
        if asked is None:
            subject_request = self.create(request, subject_id, DataSubjectRequest.Kind.EXPORT)
        else:
            subject_request = self.earlier(request, subject_id, asked)
        subject_request = self.wait(subject_request)
        if subject_request.status == DataSubjectRequest.Status.PENDING:
            return Response(request_out(subject_request), status=202, headers={
                "Retry-After": "2",  # the path percent-encoded: a header holds no raw Unicode
                "Location": f"{escape_uri_path(request.path)}?request={subject_request.pk}"
                f"&type={self.id_type(request)}"})
        if subject_request.status == DataSubjectRequest.Status.FAILED:
            raise ExportFailed("this export failed (it is logged); ask for a new one")
        path = export_path(subject_request)
        if path is None:
            raise RequestNotFound("this export has expired; ask for a new one", field="request")
        access_log(actor=api_actor(subject_request.site), action="download_export",
                   target="DataSubjectRequest", object_id=str(subject_request.pk),
                   site=subject_request.site, subject=subject_request.subject)
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name,
                            content_type="application/zip" if path.suffix == ".zip"
                            else "application/json")

    def earlier(self, request: Request, subject_id: str, asked: str) -> DataSubjectRequest:
        site = site_for_secret_key(request)
        try:
            request_id = uuid.UUID(asked)
        except ValueError:
            raise InvalidParameter("request must be a request id (a UUID)",
                                   field="request") from None
        try:
            raw = raw_id_clean(subject_id, self.id_type(request))
        except Invalid as error:
            raise InvalidParameter(error.detail, field="id") from None
        hashes = subject_hashes(site=site, id_type=self.id_type(request), raw_id=raw)
        found = DataSubjectRequest.objects.select_related("site").filter(
            pk=request_id, site=site, kind=DataSubjectRequest.Kind.EXPORT,
            subject__in=hashes).first()
        if found is None:
            raise RequestNotFound("no export request with this id for this subject",
                                  field="request")
        return found

    def wait(self, subject_request: DataSubjectRequest) -> DataSubjectRequest:
        deadline = time.monotonic() + tracking_settings.EXPORT_WAIT_SECONDS
        while True:
            subject_request.refresh_from_db()
            if subject_request.status != DataSubjectRequest.Status.PENDING or \
                    time.monotonic() >= deadline:
                return subject_request
            time.sleep(0.1)


class SubjectRequestApi(APIView):
    """A data subject request's status and, once done, its proof (rows per table)."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(parameters=[OpenApiParameter("request_id", OpenApiTypes.UUID,
                                                OpenApiParameter.PATH)],
                   responses={200: RequestOutSerializer, **_ERRORS}, tags=["privacy"])
    def get(self, request: Request, request_id: str) -> Response:
        site = site_for_secret_key(request)
        try:
            key = uuid.UUID(request_id)
        except ValueError:
            raise InvalidParameter("not a request id", field="request_id") from None
        found = DataSubjectRequest.objects.filter(pk=key, site=site).first()
        if found is None:
            raise RequestNotFound("no request with this id for this site", field="request_id")
        return Response(request_out(found))
