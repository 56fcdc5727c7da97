"""Caller-side authentication: the clinic's publishable key (`X-Org-Key`) and a call's token (`X-Call-Token`).

Reused by every caller-side endpoint (call start/end here; realtime session minting and event forwarding in the
realtime app):

    class MyCallerView(CallerAPIView):          # X-Org-Key required, Origin checked, throttled per IP and clinic,
                                                # audited as the "web-caller" principal
        def post(self, request):
            organization = caller_organization(request)
            call = caller_call(request, call_id)     # scoped to the clinic, X-Call-Token checked

Neither the key nor the token is ever logged or echoed.
"""

from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from calls.audit import audit_request_actor
from calls.models import Call, hash_call_token
from core.api.throttling import CallerIpThrottle, CallerOrgThrottle
from core.errors import ApiError, CallerAuthError
from organizations.models import ORIGIN_RE, Organization

ORG_KEY_HEADER = "X-Org-Key"
CALL_TOKEN_HEADER = "X-Call-Token"  # noqa: S105 - a header name, not a secret
_ORG_KEY_RE = re.compile(r"^pk_[A-Za-z0-9_-]{8,61}$")
_CALL_TOKEN_RE = re.compile(r"^ct_[A-Za-z0-9_-]{8,125}$")
# Compared against when no call matched, so a miss costs the same as a wrong token.
_DUMMY_HASH = "0" * 64


class OriginCheckedRequest(HttpRequest):
    """A request whose Origin CallerOrgAuthentication found among the clinic's allowed origins (the CORS
    middleware reads the flag)."""

    caller_origin_allowed: bool


@dataclass(frozen=True)
class CallerContext:
    """What `request.auth` holds after caller-side authentication."""

    organization: Organization


class CallerOrgAuthentication(BaseAuthentication):
    """`X-Org-Key: pk_…` names the clinic; a present `Origin` must be one of the clinic's allowed origins.

    Returns None when the header is absent so it can sit in front of staff authentication (e.g. /api/call/end);
    caller-only views refuse the anonymous request through `IsCaller`. A header that is present but names no clinic
    (blank included) is refused, never skipped: a request must not pass on other credentials beside a broken one.
    """

    def authenticate(self, request: Request) -> tuple[AnonymousUser, CallerContext] | None:
        key = request.headers.get(ORG_KEY_HEADER)
        if key is None:
            return None
        key = key.strip()
        organization = Organization.objects.filter(publishable_key=key).first() if _ORG_KEY_RE.match(key) else None
        if organization is None:
            raise CallerAuthError("invalid_org_key", "The X-Org-Key header does not name a clinic.")
        origin = request.headers.get("Origin")
        if origin is not None:
            if origin not in organization.allowed_origins:
                raise ApiError(403, "origin_not_allowed", "This web origin is not allowed for this clinic.")
            # Lets the CORS middleware echo the origin without looking it up again.
            cast(OriginCheckedRequest, request._request).caller_origin_allowed = True
        return AnonymousUser(), CallerContext(organization=organization)

    def authenticate_header(self, request: Request) -> str:
        return 'OrgKey realm="api", header="X-Org-Key"'


class IsCaller(BasePermission):
    """Caller-side endpoints: a valid publishable key is required."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, CallerContext):
            raise CallerAuthError("missing_org_key", "Send the clinic's publishable key in the X-Org-Key header.")
        return True


class IsCallerOrStaff(BasePermission):
    """Endpoints both sides may use (e.g. /api/call/end): a publishable key, or a logged-in/token staff user."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if isinstance(request.auth, CallerContext):
            return True
        return bool(request.user and request.user.is_authenticated)


def caller_organization(request: Request) -> Organization:
    context = request.auth
    if not isinstance(context, CallerContext):  # a view bug, not a client error
        raise RuntimeError("caller_organization() needs CallerOrgAuthentication")
    return context.organization


def require_call_token(request: Request) -> str:
    """The X-Call-Token header, or 401 when it is missing or cannot be a token."""
    token = (request.headers.get(CALL_TOKEN_HEADER) or "").strip()
    if not token:
        raise CallerAuthError("missing_call_token", "Send the call's token in the X-Call-Token header.")
    if not _CALL_TOKEN_RE.match(token):
        raise CallerAuthError("invalid_call_token", "The X-Call-Token does not match this call.")
    return token


def caller_call(request: Request, call_id: uuid.UUID | str, *, for_update: bool = False) -> Call:
    """The call `call_id` of the caller's clinic, if the request's X-Call-Token is that call's token.

    Another clinic's call answers 404 (like an unknown one); a token of another call answers 401, and so does the
    call's own token once it expired (Call.caller_access_ends_at). The token is compared in constant time, also when
    no call matched.
    """
    organization = caller_organization(request)
    token = require_call_token(request)
    try:
        call_uuid = call_id if isinstance(call_id, uuid.UUID) else uuid.UUID(str(call_id))
    except ValueError:
        raise ApiError(404, "not_found", "No such call.") from None
    queryset = Call.objects.filter(organization=organization, pk=call_uuid).select_related("organization")
    if for_update:
        queryset = queryset.select_for_update()
    call = queryset.first()
    if call is None:
        hmac.compare_digest(_DUMMY_HASH, hash_call_token(token))
        raise ApiError(404, "not_found", "No such call.")
    if not call.token_matches(token):
        raise CallerAuthError("invalid_call_token", "The X-Call-Token does not match this call.")
    if timezone.now() >= call.caller_access_ends_at():
        raise CallerAuthError("call_token_expired", "This call's token has expired: the call is over.")
    return call


def origin_allowed_anywhere(origin: str) -> bool:
    """Whether any clinic lists `origin` (CORS preflights carry no X-Org-Key to say which clinic)."""
    if not ORIGIN_RE.match(origin):
        return False
    if connection.features.supports_json_field_contains:
        return Organization.objects.filter(allowed_origins__contains=[origin]).exists()
    # SQLite cannot query inside JSON lists; clinics are few, and preflights are cached by browsers (Max-Age).
    return any(origin in (origins or []) for origins in Organization.objects.values_list("allowed_origins", flat=True))


class CallerAPIView(APIView):
    """Base for caller-side views: publishable key, Origin check, per-IP and per-clinic throttles."""

    authentication_classes = [CallerOrgAuthentication]
    permission_classes = [IsCaller]
    throttle_classes = [CallerOrgThrottle]
    # Every request counts against the per-address limit, so core.floodgate may refuse an address over it early.
    caller_ip_throttled = True

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        # The per-IP throttle runs before authentication, so floods of bad keys are refused cheaply as well.
        ip_throttle = CallerIpThrottle()
        if not ip_throttle.allow_request(request, self):
            # DRF's own check_throttles passes None too (no Retry-After); the stubs say float.
            self.throttled(request, ip_throttle.wait())  # type: ignore[arg-type]
        super().initial(request, *args, **kwargs)

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        # The audit trail's actor for this request: the caller (publishable key), or the staff user on views that
        # accept both (/api/call/end).
        caller = isinstance(request.auth, CallerContext)
        audit_request_actor(request, service="web-caller" if caller else None, via="api")


class CallerOrgKeyScheme(OpenApiAuthenticationExtension):
    """The publishable key in the OpenAPI schema."""

    target_class = CallerOrgAuthentication
    name = "orgKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": ORG_KEY_HEADER,
            "description": "The clinic's publishable key (pk_…). Public by design; a browser Origin must be one of "
            "the clinic's allowed origins.",
        }
