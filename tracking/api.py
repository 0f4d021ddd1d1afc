"""HTTP endpoints of tracking: collect (browser), events (server), consent. Thin by design."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking import serializers as s
from tracking.authentication import origin_check, site_for_public_key, site_for_secret_key
from tracking.errors import Malformed
from tracking.models import RawBatch, Site
from tracking.parsers import BoundedJSONParser, PlainTextJSONParser
from tracking.services import consent_record, event_batch_ingest
from tracking.throttling import IpRateThrottle, SiteKeyRateThrottle

_ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="malformed or invalid envelope"),
    401: OpenApiResponse(s.ErrorSerializer, description="unknown key"),
    403: OpenApiResponse(s.ErrorSerializer, description="origin not allowed, or no consent"),
    413: OpenApiResponse(s.ErrorSerializer, description="over 256 KB or over 500 events"),
    415: OpenApiResponse(s.ErrorSerializer, description="not JSON or text/plain"),
    429: OpenApiResponse(s.ErrorSerializer, description="throttled; see Retry-After"),
}


class _SiteApi(APIView):
    parser_classes = [BoundedJSONParser, PlainTextJSONParser]
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [IpRateThrottle]

    def site_throttle(self, request: Request, site: Site) -> None:
        request.recsite_site = site
        throttle = SiteKeyRateThrottle()
        if not throttle.allow_request(request, self):
            raise Throttled(wait=throttle.wait())

    def payload(self, request: Request) -> dict:
        """The parsed JSON object; DRF gives {} for an empty body, which is an error here."""
        if not request.data:
            raise Malformed("the request body is empty; send a JSON object")
        return request.data

    def public_site(self, request: Request) -> Site:
        site = site_for_public_key(self.payload(request).get("site"))
        origin_check(site, request)
        self.site_throttle(request, site)
        return site


class EventCollectApi(_SiteApi):
    """Take a batch of browser events (public site key, allowed origin)."""

    @extend_schema(request=s.BatchInSerializer,
                   responses={202: s.BatchOutSerializer, **_ERRORS}, tags=["collection"])
    def post(self, request: Request) -> Response:
        received_at = timezone.now()
        site = self.public_site(request)
        result = event_batch_ingest(
            site=site, payload=request.data, received_at=received_at,
            source=RawBatch.Source.BROWSER, user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(result.as_dict(), status=202)


class ServerEventsApi(_SiteApi):
    """Take a batch of events from the site's backend (secret key as Bearer token)."""

    throttle_classes: list = []

    @extend_schema(request=s.BatchInSerializer,
                   responses={202: s.BatchOutSerializer, **_ERRORS}, tags=["collection"])
    def post(self, request: Request) -> Response:
        received_at = timezone.now()
        site = site_for_secret_key(request)
        self.site_throttle(request, site)
        result = event_batch_ingest(
            site=site, payload=self.payload(request), received_at=received_at,
            source=RawBatch.Source.SERVER, user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(result.as_dict(), status=202)


class ConsentApi(_SiteApi):
    """Record a visitor's consent choice (public site key, allowed origin)."""

    @extend_schema(request=s.ConsentInSerializer,
                   responses={201: s.ConsentOutSerializer, **_ERRORS}, tags=["consent"])
    def post(self, request: Request) -> Response:
        site = self.public_site(request)
        receipt = consent_record(site=site, payload=request.data)
        return Response(
            {"receipt_id": str(receipt.receipt_id), "recorded_at": receipt.recorded_at},
            status=201,
        )
