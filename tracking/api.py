"""HTTP endpoints of tracking: collect (browser), events (server), consent. Thin by design."""

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import Throttled, UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking import serializers as s
from tracking.authentication import origin_check, site_for_public_key, site_for_secret_key
from tracking.conf import tracking_settings
from tracking.errors import Malformed
from tracking.models import RawBatch, Site
from tracking.parsers import BoundedJSONParser, PlainTextJSONParser
from tracking.services import (
    SubjectHasher,
    consent_keys_of_batch,
    consent_record,
    event_batch_ingest,
)
from tracking.throttling import (
    IpRateThrottle,
    SiteKeyRateThrottle,
    counted_get_many,
    counters_for,
    counts_check,
)
from tracking.wire import WireBatch, batch_decode

_ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="malformed or invalid envelope"),
    401: OpenApiResponse(s.ErrorSerializer, description="unknown key"),
    403: OpenApiResponse(s.ErrorSerializer, description="origin not allowed, or no consent"),
    413: OpenApiResponse(s.ErrorSerializer, description="over 256 KB or over 500 events"),
    415: OpenApiResponse(s.ErrorSerializer, description="not JSON or text/plain"),
    429: OpenApiResponse(s.ErrorSerializer, description="throttled; see Retry-After"),
}


class LeanApiView(APIView):
    """Helpers for views whose hot method skips DRF's dispatch: errors as DRF answers them."""

    def error_response(self, exc: Exception) -> HttpResponse:
        """DRF's exception handler's answer, as JSON (anything it does not answer re-raises)."""
        response = self.handle_exception(exc)
        headers = {k: v for k, v in response.items() if k.lower() != "content-type"}
        return HttpResponse(orjson.dumps(response.data, option=orjson.OPT_UTC_Z),
                            status=response.status_code, content_type="application/json",
                            headers=headers)

    def raise_uncaught_exception(self, exc: Exception) -> None:
        if isinstance(self.request, Request):
            super().raise_uncaught_exception(exc)
        raise exc


class _SiteApi(LeanApiView):
    """A POST endpoint taking one JSON object, with a lean dispatch.

    DRF's dispatch (request wrapper, content negotiation, renderer) costs as
    much CPU as validating and storing a batch of 20 events, and these are the
    hottest endpoints (bench/profile_ingest.py). POST therefore takes a short
    path that keeps everything DRF gives here: the same parsers, throttles,
    exception handler (every error as JSON) and OpenAPI schema. ``post`` gets
    the Django request with ``data`` set to the parsed body.
    """

    parser_classes = [BoundedJSONParser, PlainTextJSONParser]
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [IpRateThrottle]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs, self.request, self.headers = args, kwargs, request, {}
        try:
            self.check_throttles(request)
            request.data = self.parse(request)
            response = self.post(request, *args, **kwargs)
        except Exception as exc:  # DRF's handler answers API errors and re-raises the rest
            return self.error_response(exc)
        return HttpResponse(orjson.dumps(response.data, option=orjson.OPT_UTC_Z),
                            status=response.status_code, content_type="application/json")

    # Whether a body may be decoded as a WireBatch (tracking.wire): the event batches.
    wire_batches = False

    def parse(self, request: HttpRequest) -> Any:
        """The body, parsed by the parser for its media type (415 for any other type): a
        dict, or for the event endpoints a WireBatch when every event has the wire types."""
        media_type = request.content_type or ""
        for parser_class in self.parser_classes:
            if media_type == parser_class.media_type:
                parser = parser_class()
                body = parser.body_read(request)
                if self.wire_batches:
                    batch = batch_decode(body, max_events=tracking_settings.MAX_EVENTS,
                                         max_depth=tracking_settings.MAX_DEPTH)
                    if batch is not None:
                        return batch
                return parser.body_parse(body)
        if request.META.get("CONTENT_LENGTH") in (None, "", "0"):
            raise Malformed("the request body is empty; send a JSON object")
        raise UnsupportedMediaType(media_type or "(none)")

    def site_throttle(self, request: Request, site: Site) -> None:
        request.recsite_site = site
        throttle = SiteKeyRateThrottle()
        if not throttle.allow_request(request, self):
            raise Throttled(wait=throttle.wait())

    def payload(self, request: Request) -> Any:
        """The parsed JSON object (or WireBatch); DRF gives {} for an empty body, which is an
        error here."""
        if not request.data:
            raise Malformed("the request body is empty; send a JSON object")
        return request.data

    def public_site(self, request: Request) -> Site:
        site = site_for_public_key(self.payload(request).get("site"))
        origin_check(site, request)
        self.site_throttle(request, site)
        return site


class EventCollectApi(_SiteApi):
    """Take a batch of browser events (public site key, allowed origin).

    A plainly valid batch is decoded and checked on the fast path (tracking.wire);
    any other goes through the general parser and validator, with the same answers.

    Both throttles (per IP, per site) are counted once the site is known, in the
    same Redis command that reads the visitors' consent states: one round trip
    before the insert. A request refused earlier (malformed, unknown key, origin
    not allowed) costs less than counting it would.
    """

    throttle_classes: list = []
    counted_throttles = (IpRateThrottle, SiteKeyRateThrottle)
    wire_batches = True

    @extend_schema(request=s.BatchInSerializer,
                   responses={202: s.BatchOutSerializer, **_ERRORS}, tags=["collection"])
    def post(self, request: Request) -> Response:
        received_at = timezone.now()
        payload = self.payload(request)
        site_key, events = (payload.site, payload.events) if isinstance(payload, WireBatch) \
            else (payload.get("site"), payload.get("events"))
        site = site_for_public_key(site_key)
        origin_check(site, request)
        request.recsite_site = site
        hasher = SubjectHasher(site)
        keys = consent_keys_of_batch(site=site, events=events, hasher=hasher) \
            if site.require_consent else []
        counters = counters_for(request, self, [cls() for cls in self.counted_throttles])
        counts, cached = counted_get_many(counters, keys)
        counts_check(counters, counts)
        result = event_batch_ingest(
            site=site, payload=payload, received_at=received_at,
            source=RawBatch.Source.BROWSER, user_agent=request.META.get("HTTP_USER_AGENT", ""),
            hasher=hasher, consent_cached={key: cached.get(key) for key in keys},
        )
        return Response(result.as_dict(), status=202)


class ServerEventsApi(_SiteApi):
    """Take a batch of events from the site's backend (secret key as Bearer token)."""

    throttle_classes: list = []
    wire_batches = True

    @extend_schema(request=s.ServerBatchInSerializer,
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
