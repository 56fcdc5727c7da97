"""Django-level API guards that run before any view: the body-size limit and CORS for caller-side endpoints.

CORS is written here (not django-cors-headers) because the allowed origins are per clinic, credentials are never
allowed, and staff endpoints must get no CORS headers at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from calls.api.caller_auth import origin_allowed_anywhere
from calls.api.errors import error_response
from calls.api.parsers import max_body_bytes

# Caller-side endpoints (the clinic's website calls these cross-origin); trailing slash optional.
CALLER_PATH_RE = re.compile(
    r"^/api/(call/start|call/end|realtime/session|calls/[0-9a-fA-F-]{36}/(realtime|events))/?$"
)
CORS_ALLOW_METHODS = "POST, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type, X-Org-Key, X-Call-Token"
CORS_EXPOSE_HEADERS = "Retry-After, X-Request-ID"
CORS_MAX_AGE = "600"


class ApiBodyLimitMiddleware:
    """413 for API requests whose declared body is over the limit, before anything reads it. (Bodies without a
    Content-Length are bounded by the API's JSON parser.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "invalid_content_length", "The Content-Length header is not a number.")
            limit = max_body_bytes()
            if length > limit:
                return error_response(
                    413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes."
                )
        return self.get_response(request)


class CallerCorsMiddleware:
    """CORS for caller-side paths only. A preflight names no clinic (browsers send no custom header values), so it
    is allowed when any clinic lists the origin; the actual request is then checked against the clinic its
    X-Org-Key names (403 `origin_not_allowed`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin")
        if not origin or not CALLER_PATH_RE.match(request.path):
            return self.get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self._preflight(origin)
        response = self.get_response(request)
        if getattr(request, "caller_origin_allowed", False) or origin_allowed_anywhere(origin):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        _vary_origin(response)
        return response

    def _preflight(self, origin: str) -> HttpResponse:
        if not origin_allowed_anywhere(origin):
            response = error_response(403, "origin_not_allowed", "This web origin is not allowed to call the API.")
        else:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
            response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response["Access-Control-Max-Age"] = CORS_MAX_AGE
        _vary_origin(response)
        return response


def _vary_origin(response: HttpResponse) -> None:
    vary = response.get("Vary")
    if not vary:
        response["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response["Vary"] = f"{vary}, Origin"
