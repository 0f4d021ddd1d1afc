"""HTTP endpoint of profiles for the site owner's backend: a subject's profile and segments."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from profiles.selectors import profile_view
from tracking.authentication import site_for_secret_key
from tracking.errors import ApiError
from tracking.serializers import ErrorSerializer
from tracking.validation import Invalid, clean_id, clean_user_id

ID_TYPES = {"user": "u", "anon": "a"}


class ProfileNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class InvalidParameter(ApiError):
    default_code = "invalid"


class RfmSerializer(serializers.Serializer):
    r = serializers.IntegerField(allow_null=True, help_text="1..5, null if not scored")
    f = serializers.IntegerField(allow_null=True)
    m = serializers.IntegerField(allow_null=True)
    segment = serializers.CharField(help_text="e.g. Champions; empty if not scored")


class SegmentRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["rule", "cluster"])
    since = serializers.DateTimeField()


class SubjectProfileApi(APIView):
    """A subject's profile and current segments (secret key as Bearer token)."""

    authentication_classes: list = []
    permission_classes: list = []

    class OutputSerializer(serializers.Serializer):
        subject = serializers.CharField(help_text="the pseudonymous subject id (a keyed hash)")
        identified = serializers.BooleanField()
        first_seen = serializers.DateTimeField()
        last_seen = serializers.DateTimeField()
        recency_days = serializers.FloatField()
        events = serializers.IntegerField()
        events_by_type = serializers.DictField(child=serializers.IntegerField())
        sessions = serializers.IntegerField()
        active_days = serializers.IntegerField()
        purchases = serializers.IntegerField(help_text="distinct transactions")
        monetary = serializers.FloatField(help_text="purchase value net of refunds")
        rfm = RfmSerializer()
        lifecycle = serializers.CharField(help_text="new, active, at_risk, churned or vip")
        affinity = serializers.DictField(child=serializers.FloatField(),
                                         help_text="category: 0..1, recency-decayed")
        avg_engaged_seconds = serializers.FloatField(help_text="engaged time per session")
        devices = serializers.DictField(child=serializers.FloatField(), help_text="shares")
        segments = SegmentRefSerializer(many=True)

    @extend_schema(
        parameters=[OpenApiParameter(
            "type", str, enum=list(ID_TYPES), default="user",
            description="whether the id in the path is the site's user id or an anon id"),
            OpenApiParameter("subject_id", {"type": "string", "minLength": 1, "maxLength": 200},
                             OpenApiParameter.PATH, description="the user id or anon id")],
        responses={200: OutputSerializer,
                   400: OpenApiResponse(ErrorSerializer, description="not an id"),
                   401: OpenApiResponse(ErrorSerializer, description="unknown key"),
                   404: OpenApiResponse(ErrorSerializer, description="no profile")},
        tags=["profiles"])
    def get(self, request: Request, subject_id: str) -> Response:
        site = site_for_secret_key(request)
        kind = ID_TYPES.get(request.query_params.get("type", "user"))
        if kind is None:
            raise InvalidParameter("type must be user or anon", field="type")
        raw_id = _raw_id(subject_id, kind)
        view = profile_view(site=site, raw_id=raw_id, kind=kind)
        if view is None:
            raise ProfileNotFound("no profile for this id: no event of it was stored",
                                  field="id")
        p = view.profile
        return Response(self.OutputSerializer({
            "subject": p.subject, "identified": p.identified, "first_seen": p.first_seen,
            "last_seen": p.last_seen, "recency_days": round(view.recency_days, 3),
            "events": p.events, "events_by_type": p.by_type, "sessions": p.sessions,
            "active_days": p.active_days, "purchases": p.purchases, "monetary": p.monetary,
            "rfm": {"r": p.r_score, "f": p.f_score, "m": p.m_score, "segment": p.rfm_segment},
            "lifecycle": p.stage, "affinity": view.affinity,
            "avg_engaged_seconds": round(p.avg_engaged_seconds, 3),
            "devices": view.device_shares, "segments": view.segments,
        }).data)


def _raw_id(value: str, kind: str) -> str:
    try:
        raw = clean_user_id(value, "id") if kind == "u" else clean_id(value, "id")
    except Invalid as error:
        raise InvalidParameter(error.detail, field="id") from None
    if raw is None:
        raise InvalidParameter(f"{value[:40]!r} is not a user id", field="id")
    return raw
