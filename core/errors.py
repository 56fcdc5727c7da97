"""One error shape for the whole API: `{"error": {"code", "message", "fields"?}}`.

DRF exceptions go through `api_exception_handler`; what DRF never sees (unknown /api/ routes, oversized bodies
refused before a view runs) uses `error_response` directly, so a client parses every 4xx/5xx the same way.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.drain import refuse_new_calls

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
DATABASE_MESSAGE = "The database is unavailable; retry shortly."


class ApiError(exceptions.APIException):
    """An API error with an explicit machine code, e.g. `ApiError(409, "call_ended", "The call has ended.")`.
    `retry_after` (seconds) adds a Retry-After header (503 draining, upstream unavailable)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.fields = fields
        self.retry_after = retry_after


class ServiceUnavailable(Exception):
    """A dependency the domain needs is down (e.g. the audit trail cannot be written). Domain code raises a
    subclass; the API maps it to 503 `code` with Retry-After, the console to a plain 503 page."""

    code = "service_unavailable"
    message = "A service this request needs is unavailable; retry shortly."
    retry_after = RETRY_AFTER_SECONDS


def database_unavailable(exc: BaseException | None) -> bool:
    """True for a database connection that failed or could not be had (not for a query/constraint error).
    Django wraps psycopg's OperationalError/InterfaceError (psycopg_pool's PoolTimeout is an OperationalError);
    raw psycopg errors are checked too."""
    if exc is None:
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # SQLite-only installs
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | psycopg_pool.PoolTimeout)


class CallerAuthError(exceptions.AuthenticationFailed):
    """401 for a missing or unknown publishable key or call token (DRF adds WWW-Authenticate for this class)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(detail=message, code=code)
        self.error_code = code


# Codes and messages for DRF's own exceptions; a view raising one without a custom message gets these.
_DEFAULTS: dict[type[exceptions.APIException], tuple[str, str]] = {
    exceptions.ParseError: ("invalid_json", "The request body is not valid JSON."),
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    exceptions.AuthenticationFailed: ("authentication_failed", "The credentials are not valid."),
    exceptions.PermissionDenied: ("permission_denied", "You do not have permission to do this."),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", "This method is not allowed on this endpoint."),
    exceptions.NotAcceptable: ("not_acceptable", "This endpoint answers application/json only."),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Send the body as application/json."),
    exceptions.Throttled: ("throttled", "Too many requests; retry later."),
}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(
    status_code: int, code: str, message: str, *, fields: dict[str, list[str]] | None = None
) -> JsonResponse:
    """The error shape for code paths outside DRF views (middleware, URL fallbacks)."""
    return JsonResponse(error_body(code, message, fields), status=status_code)


# DRF messages that repeat the rejected input back ("'<value>' is not a valid choice."): callers may type patient
# data into any field, so the message names the problem without the value.
_ECHOING_CODES = {"invalid_choice": "Not one of the allowed values.", "does_not_exist": "No such object."}


def _message(item: Any) -> str:
    code = getattr(item, "code", None)  # ErrorDetail carries the code; plain strings have none
    if isinstance(code, str) and code in _ECHOING_CODES:
        return _ECHOING_CODES[code]
    return str(item)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as flat dotted paths: {"agent": {"voice": [..]}} -> {"agent.voice": [..]};
    list items by index: "business_hours.1.opens"."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            path = f"{prefix}.{name}" if prefix and name != "non_field_errors" else (prefix or name)
            for sub_key, messages in flatten_errors(value, path).items():
                out.setdefault(sub_key, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [_message(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:  # DRF puts {} for list items that were valid
                    path = f"{prefix}.{index}" if prefix else str(index)
                    for sub_key, messages in flatten_errors(item, path).items():
                        out.setdefault(sub_key, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [_message(detail)]
    return out


def _message_for(exc: exceptions.APIException, default: str) -> str:
    detail = exc.detail
    if isinstance(detail, str) and detail and detail != type(exc).default_detail:
        return str(detail)
    return default


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every exception a view raises becomes the one error shape; nothing leaks a 500
    page (unexpected errors are logged with the request id and answered with a generic 500)."""
    # Imported here: rest_framework.views loads the parser classes from settings, and our parser imports this module.
    from rest_framework.views import set_rollback

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError(413, "payload_too_large", "The request body is too large.")

    # --- fault tolerance: a lost database connection is a 503 to retry, not a 500 ---
    if database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        set_rollback()
        return Response(
            error_body("database_unavailable", DATABASE_MESSAGE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, ServiceUnavailable):
        logger.warning("service unavailable: %s", type(exc).__name__)
        set_rollback()
        return Response(
            error_body(exc.code, exc.message),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(exc.retry_after)},
        )
    # --- end fault tolerance ---

    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled API error: %s", type(exc).__name__)
        set_rollback()
        return Response(
            error_body("server_error", "Something went wrong on our side; the error was logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    headers: dict[str, str] = {}
    # DRF's APIView.handle_exception sets `auth_header` on 401s from an authenticator that names a scheme.
    auth_header = getattr(exc, "auth_header", None)
    if isinstance(auth_header, str) and auth_header:
        headers["WWW-Authenticate"] = auth_header
    fields: dict[str, list[str]] | None = None

    if isinstance(exc, ApiError | CallerAuthError):
        code, message = exc.error_code, str(exc.detail)
        fields = getattr(exc, "fields", None)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:  # 503 draining / upstream_unavailable (fault tolerance)
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    elif isinstance(exc, exceptions.ValidationError):
        code, message = "validation_error", "The request is not valid; see fields."
        fields = flatten_errors(exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        code, message = "throttled", "Too many requests; retry later."
        wait: float | None = exc.wait  # type: ignore[attr-defined]  # set by Throttled.__init__; the stubs omit it
        if wait is None:
            wait = 1
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
        message = f"Too many requests; retry in {headers['Retry-After']} seconds."
    else:
        code, default = next(
            (value for cls, value in _DEFAULTS.items() if isinstance(exc, cls)),
            ("error", "The request failed."),
        )
        message = _message_for(exc, default)
        if exc.status_code == status.HTTP_403_FORBIDDEN and isinstance(
            exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed
        ):
            code = "permission_denied"
        elif isinstance(exc, exceptions.PermissionDenied) and str(exc.detail).startswith("CSRF Failed"):
            # DRF's SessionAuthentication.enforce_csrf: a session without the CSRF token (an API token needs none).
            code, message = "csrf_failed", "CSRF check failed: send the X-CSRFToken header with the session."

    set_rollback()
    return Response(error_body(code, message, fields), status=exc.status_code, headers=headers)


def refuse_if_draining() -> None:
    """Call-start paths: 503 `draining` with Retry-After while this process drains for a deploy (core/drain.py)."""
    if refuse_new_calls():
        raise ApiError(503, "draining", "This server is restarting; retry in a moment.", retry_after=1)


@csrf_exempt  # it changes nothing; a POST with a session cookie gets the 404, not the CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown routes under /api/ answer 404 in the error shape instead of Django's HTML page."""
    return error_response(404, "not_found", "There is no API endpoint at this path.")


def not_found_page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """A route that answers the same 404 whatever it is asked for (it tells nothing about what exists)."""
    raise Http404


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: under /api/ the error shape (code `csrf_failed`), elsewhere Django's own page. (DRF views
    check CSRF themselves and answer 403 permission_denied; this covers the plain Django views under /api/.)"""
    if request.path.startswith("/api/"):
        return error_response(403, "csrf_failed", "CSRF check failed: send the X-CSRFToken header with the session.")
    return django_csrf_failure(request, reason)
