"""HTTP endpoints of recommend: recommendations for the visitor (public key) or for a user
(secret key), similar items, and the catalog upsert. Thin: parse, call one service.

The public endpoints answer only for the calling visitor's own anon id (a random id
only their browser knows); a user id needs the secret key.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommend import serializers as s
from recommend.caching import answer_cache
from recommend.catalog import ItemInvalid, items_upsert
from recommend.conf import recommend_settings
from recommend.params import (
    ParamInvalid,
    anon_id_param,
    cache_field,
    personalized_param,
    query_params,
    rec_request_parse,
)
from recommend.recommending import RecRequest, answer_cached, recommendations_answer
from recommend.selectors import user_alias_subjects
from recommend.tokens import SUBJECT_CHARS
from tracking.api import LeanApiView
from tracking.authentication import site_for_public_key, site_for_secret_key
from tracking.errors import ApiError, EnvelopeInvalid, Malformed, OriginNotAllowed
from tracking.models import Site
from tracking.parsers import BoundedJSONParser
from tracking.serializers import ErrorSerializer
from tracking.services import subject_hash
from tracking.throttling import (
    FixedWindowThrottle,
    IpRateThrottle,
    SiteKeyRateThrottle,
    counters_for,
    counts_check,
)

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="a parameter is wrong (see field)"),
    401: OpenApiResponse(ErrorSerializer, description="unknown key"),
    403: OpenApiResponse(ErrorSerializer, description="origin not allowed, or a user id "
                         "asked for with the public key"),
    429: OpenApiResponse(ErrorSerializer, description="throttled; see Retry-After"),
}


def _param(name: str, schema: dict, description: str = "", **kwargs: Any) -> OpenApiParameter:
    """A query parameter with its constraints in the schema (what recommend.params checks);
    an empty value leaves an optional one unset."""
    if not kwargs.get("required"):
        schema = {"anyOf": [schema, {"type": "string", "enum": [""]}]}
    return OpenApiParameter(name, schema, description=description, **kwargs)


def _path(name: str, max_length: int) -> OpenApiParameter:
    return OpenApiParameter(name, {"type": "string", "minLength": 1, "maxLength": max_length},
                            OpenApiParameter.PATH)


def _number(low: float, high: float) -> dict:
    return {"type": "number", "minimum": low, "maximum": high}


_PLACEMENT = {"type": "string", "pattern": "^[-a-zA-Z0-9_]{1,40}$"}
_LIMIT = _param("limit", {"type": "integer", "minimum": 1,
                          "maximum": recommend_settings.MAX_LIMIT},
                "items (default: the placement's)")
_FILTER = _param("filter", {"type": "string", "maxLength": 4000},
                 'JSON, e.g. {"category": {"in": ["lamps"]}, "price": {"between": [10, 50]}}; '
                 "see recommend/query.py")
_BOOST = _param("boost", {"type": "string", "maxLength": 4000},
                'JSON, e.g. {"if": {"attributes.color": "red"}, "factor": 2}')
_DIVERSITY = _param("diversity", _number(0, 1), "0 (by relevance) .. 1 (most varied)")
_AFTER = _param("after", {"type": "string"}, "a rec_token: the next items of that list, "
                "none of its items again (infinite scroll)")
_QUERY = [
    _param("placement", _PLACEMENT, 'e.g. "home", "product" (admin: Placements)',
           required=True),
    _LIMIT,
    _param("item", {"type": "string", "minLength": 1, "maxLength": 100},
           "the item on the page (product pages)"),
    _FILTER, _BOOST, _DIVERSITY,
    _param("rotation", _number(0, 1), "0..1: each recent impression without a click "
           "multiplies an item's score by 1 - rotation"),
    _param("rotation_hours", _number(0, 24 * 90), "how long an impression counts"),
    _AFTER,
    _param("device", {"type": "string", "pattern": "^[a-z]{1,20}$"}),
    _param("country", {"type": "string", "pattern": "^[A-Za-z]{2}$"}),
    _param("hour", {"type": "integer", "minimum": 0, "maximum": 23},
           "0..23, for the placement's context rules"),
    _param("personalized", {"type": "string", "enum": ["0", "1", "true", "false"]},
           "0: lists that read nothing of the visitor"),
]
_PUBLIC = [
    OpenApiParameter("site", str, required=True, description="the site's public key"),
    _param("anon_id", {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{16,200}$"},
           "the visitor's id from the tracker (else the rs_aid cookie); required for a "
           "personalized list"),
]


class SecretKeyRequired(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "secret_key_required"


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


def _invalid(error: ParamInvalid | ItemInvalid) -> EnvelopeInvalid:
    return EnvelopeInvalid(error.field, error.detail)


class _LeanApi(LeanApiView):
    """GET without DRF's request wrapper and negotiation (they cost as much as a cached
    answer); the same throttles, JSON errors and schema. ``get`` returns JSON bytes."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    # Public endpoints count their throttles in the cache read's round trip (see
    # tracking/throttling.py); with no Redis they run as DRF runs them.
    public_throttles: list[type[FixedWindowThrottle]] = []
    query: dict[str, str]  # the query parameters (recommend.params.query_params)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET":
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs, self.request, self.headers = args, kwargs, request, {}
        try:
            self.query = query_params(request)
            if not answer_cache.pipelined:
                for throttle in self.public_throttles:
                    if throttle is not SiteKeyRateThrottle:
                        self._throttle(request, throttle())
            body = self.get(request, *args, **kwargs)
            return HttpResponse(body, content_type="application/json")
        except Exception as exc:  # DRF's handler answers API errors and re-raises the rest
            return self.error_response(exc)

    def _throttle(self, request: HttpRequest, throttle: FixedWindowThrottle) -> None:
        if not throttle.allow_request(request, self):
            raise Throttled(wait=throttle.wait())

    def public_site(self, request: HttpRequest) -> Site:
        """The site of the public key; a browser's Origin, when sent, must be allowed."""
        site = site_for_public_key(self.query.get("site"))
        origin = request.META.get("HTTP_ORIGIN")
        if origin is not None and not site.allows_origin(origin):
            raise OriginNotAllowed(f"{origin} is not an allowed origin of this site")
        request.recsite_site = site  # type: ignore[attr-defined]
        if not answer_cache.pipelined and SiteKeyRateThrottle in self.public_throttles:
            self._throttle(request, SiteKeyRateThrottle())
        return site

    def cached(self, request: HttpRequest, site: Site, subject: str, field: str | None
               ) -> tuple[int, bytes | None]:
        """(generation, cached answer) read with the throttles counted in one round trip."""
        counters = counters_for(request, self, [cls() for cls in self.public_throttles]) \
            if answer_cache.pipelined else []
        generation, answer, counts = answer_cached(
            site=site, subject=subject, cache_field=field,
            counters=[(c.key, c.seconds) for c in counters])
        counts_check(counters, counts)
        return generation, answer

    def visitor(self, request: HttpRequest, site: Site, *, personalized: bool = True) -> str:
        """The calling visitor's subject ("" for an unpersonalized list asked without an
        anon id); a user id is refused with the public key."""
        if "user_id" in self.query:
            raise SecretKeyRequired("recommendations for a user id need the secret key: "
                                    "GET /api/v1/users/{user_id}/recommendations",
                                    field="user_id")
        if not personalized and not self.query.get("anon_id") and \
                not request.COOKIES.get("rs_aid"):
            return ""
        try:
            anon_id = anon_id_param(self.query, request.COOKIES.get("rs_aid"))
        except ParamInvalid as error:
            raise _invalid(error) from None
        return subject_hash(site=site, kind="a", raw_id=anon_id)


def _parse(query: dict[str, str], subject: str, **kwargs: Any) -> tuple[RecRequest, bool]:
    """The request's parameters; ``after`` must be a token served to this same subject."""
    try:
        parsed = rec_request_parse(query, **kwargs), personalized_param(query)
    except ParamInvalid as error:
        raise _invalid(error) from None
    after = parsed[0].after
    if after is not None and after.subject != subject[:SUBJECT_CHARS]:
        raise EnvelopeInvalid("after", "is a rec_token served to another visitor")
    return parsed


class RecommendationsApi(_LeanApi):
    """Recommendations for the calling visitor (public key; their own anon id only)."""

    public_throttles = [IpRateThrottle, SiteKeyRateThrottle]

    @extend_schema(parameters=[*_PUBLIC, *_QUERY], tags=["recommendations"],
                   responses={200: s.RecListSerializer, **_ERRORS})
    def get(self, request: HttpRequest) -> bytes:
        site = self.public_site(request)
        query = self.query
        subject = self.visitor(request, site, personalized=query.get("personalized") not in
                               ("0", "false"))
        # A cached answer was made from these very parameters, valid then (an invalid one
        # is a 400 and never cached): the cache is asked before they are parsed again.
        field = None if query.get("after") else cache_field(query)
        generation, cached = self.cached(request, site, subject, field)
        if cached is not None:
            return cached
        rec_request, personalized = _parse(query, subject)
        return recommendations_answer(site=site, subject=subject, request=rec_request,
                                      cache_field=field, personalized=personalized,
                                      generation=generation)


class SimilarItemsApi(_LeanApi):
    """Items similar to an item (public key); personalized for the visitor with anon_id."""

    public_throttles = [IpRateThrottle, SiteKeyRateThrottle]

    @extend_schema(parameters=[*_PUBLIC, _path("item_id", 100), _LIMIT,
                               _param("placement", _PLACEMENT, 'default "similar"'),
                               _FILTER, _BOOST, _DIVERSITY, _AFTER],
                   tags=["recommendations"], responses={200: s.RecListSerializer, **_ERRORS})
    def get(self, request: HttpRequest, item_id: str) -> bytes:
        site = self.public_site(request)
        query = self.query
        personal = bool(query.get("anon_id") or request.COOKIES.get("rs_aid"))
        subject = self.visitor(request, site) if personal else ""
        field = None if query.get("after") else \
            cache_field(query, extra=f"{item_id}\x1f{personal}")
        generation, cached = self.cached(request, site, subject, field)
        if cached is not None:
            return cached
        rec_request, _ = _parse(query, subject, item=item_id, similar=True)
        return recommendations_answer(site=site, subject=subject, request=rec_request,
                                      cache_field=field, personalized=personal,
                                      generation=generation)


class UserRecommendationsApi(_LeanApi):
    """Recommendations for a user of the site (the site's backend, secret key)."""

    @extend_schema(parameters=[_path("user_id", 200), *_QUERY], tags=["recommendations"],
                   responses={200: s.RecListSerializer, **_ERRORS})
    def get(self, request: HttpRequest, user_id: str) -> bytes:
        site = site_for_secret_key(request)
        if not 0 < len(user_id) <= 200:
            raise EnvelopeInvalid("user_id", "must be 1 to 200 characters")
        subject = subject_hash(site=site, kind="u", raw_id=user_id)
        rec_request, personalized = _parse(self.query, subject)
        subjects = [subject, *user_alias_subjects(site=site, user_subject=subject)]
        field = None if rec_request.after is not None else cache_field(self.query)
        return recommendations_answer(site=site, subject=subject, request=rec_request,
                                      cache_field=field, consent_subjects=subjects,
                                      history_subjects=subjects, personalized=personalized)


class ItemsUpsertApi(APIView):
    """Create or update catalog items; ``available: false`` takes one down everywhere at
    once (secret key)."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [BoundedJSONParser]

    @extend_schema(request=s.ItemsInSerializer, tags=["catalog"],
                   responses={200: s.UpsertOutSerializer, **_ERRORS,
                              413: OpenApiResponse(ErrorSerializer, description="too large"),
                              415: OpenApiResponse(ErrorSerializer,
                                                   description="not JSON")})
    def put(self, request: Request) -> Response:
        site = site_for_secret_key(request)
        if not isinstance(request.data, dict) or not request.data:
            raise Malformed('send {"items": [...]}')
        unknown = sorted(set(request.data) - {"items"})
        if unknown:
            raise EnvelopeInvalid(unknown[0][:40], "is not a field (items)")
        try:
            result = items_upsert(site=site, items=request.data.get("items"))
        except ItemInvalid as error:
            raise _invalid(error) from None
        return Response({"created": result.created, "updated": result.updated,
                         "unavailable": result.unavailable})

