"""CORS for caller-side endpoints, answered before any view runs.

CORS is written here (not django-cors-headers) because the allowed origins are per clinic, credentials are never
allowed, and staff endpoints must get no CORS headers at all.
"""

from __future__ import annotations

import re

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from calls.api.caller_auth import origin_allowed_anywhere
from core.errors import error_response
from core.middleware import SyncAsyncMiddleware

# Caller-side endpoints (the clinic's website calls these cross-origin); trailing slash optional.
CALLER_PATH_RE = re.compile(
    r"^/api/(call/start|call/end|realtime/session|calls/[0-9a-fA-F-]{36}/(realtime|events|transcript))/?$"
)
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type, X-Org-Key, X-Call-Token"
CORS_EXPOSE_HEADERS = "Retry-After, X-Request-ID"
CORS_MAX_AGE = "600"


class CallerCorsMiddleware(SyncAsyncMiddleware):
    """CORS for caller-side paths only. A preflight names no clinic (browsers send no custom header values), so it
    is allowed when any clinic lists the origin; the actual request is then checked against the clinic its
    X-Org-Key names (403 `origin_not_allowed`)."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        origin = self._caller_origin(request)
        if origin is None:
            return self.get_response(request)
        if self._is_preflight(request):
            return _preflight(origin, origin_allowed_anywhere(origin))
        response = self.get_response(request)
        allowed = getattr(request, "caller_origin_allowed", False) or origin_allowed_anywhere(origin)
        return _grant(response, origin, allowed)

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        origin = self._caller_origin(request)
        if origin is None:
            return await self.get_response(request)
        if self._is_preflight(request):
            return _preflight(origin, await sync_to_async(origin_allowed_anywhere)(origin))
        response = await self.get_response(request)
        allowed = getattr(request, "caller_origin_allowed", False) or await sync_to_async(origin_allowed_anywhere)(
            origin
        )
        return _grant(response, origin, allowed)

    @staticmethod
    def _caller_origin(request: HttpRequest) -> str | None:
        origin = request.headers.get("Origin")
        return origin if origin and CALLER_PATH_RE.match(request.path) else None

    @staticmethod
    def _is_preflight(request: HttpRequest) -> bool:
        return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _preflight(origin: str, allowed: bool) -> HttpResponse:
    response: HttpResponse
    if not allowed:
        response = error_response(403, "origin_not_allowed", "This web origin is not allowed to call the API.")
    else:
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
        response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response["Access-Control-Max-Age"] = CORS_MAX_AGE
    _vary_origin(response)
    return response


def _grant(response: HttpResponse, origin: str, allowed: bool) -> HttpResponse:
    # Errors (401, 429) are readable by the widget too, so it can tell the caller what went wrong.
    if allowed:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    _vary_origin(response)
    return response


def _vary_origin(response: HttpResponse) -> None:
    vary = response.get("Vary")
    if not vary:
        response["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response["Vary"] = f"{vary}, Origin"
