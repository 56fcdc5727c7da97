"""`POST /api/auth/token`: a staff username and password for an expiring API token.

The front-end developer's way in (docs/integration.md): the same rules as the console's login form (the address's
sign-in rate, the lockout that says how long, a staff account), audited, and the answer names the user's clinics so
the next request can use their ids. It lives beside the call API because the audit trail does (calls.audit).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.audit import audit_sign_in
from core.api.fields import TextField
from core.api.schema import ERROR_400, WRITE_ERRORS, ErrorSerializer
from core.errors import ApiError
from organizations.auth import INVALID_CREDENTIALS, SignInRefused, api_sign_in, lockout_message, token_expires_at
from organizations.models import Membership

EXAMPLE_TOKEN = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # noqa: S105 - the format of a token, not a real one


class TokenRequestSerializer(serializers.Serializer):
    username = TextField(max_length=150, help_text="The staff username you sign in to the console with.")
    password = TextField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


TOKEN_RESPONSE = inline_serializer(
    name="ApiToken",
    fields={
        "token": serializers.CharField(help_text="Send as `Authorization: Token <token>` on staff requests."),
        "expires_at": serializers.DateTimeField(
            help_text="When the token stops working (401 token_expired): sign in again for a new one."
        ),
        "user": inline_serializer(
            name="ApiTokenUser",
            fields={
                "username": serializers.CharField(),
                "operator": serializers.BooleanField(help_text="Operators see every clinic."),
                "clinics": inline_serializer(
                    name="ApiTokenClinic",
                    fields={
                        "id": serializers.UUIDField(help_text="The clinic id (the console shows it too)."),
                        "slug": serializers.CharField(),
                        "name": serializers.CharField(),
                        "role": serializers.ChoiceField(choices=Membership.Role.choices),
                    },
                    many=True,
                ),
            },
        ),
    },
)


def _refusal(description: str, code: str, message: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[OpenApiExample(code, value={"error": {"code": code, "message": message}}, response_only=True)],
    )


class ApiTokenView(APIView):
    # No authentication: a stale Authorization header must not stop a sign-in, and there is no session to guard.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token",
        summary="Sign in: a staff username and password for an API token",
        description="Answers the user's API token, when it expires (API_TOKEN_TTL_HOURS after it was issued; "
        "every sign-in before then answers the same token) and their clinics. The console login's rules apply: "
        "sign-in attempts per address are rate limited (429 throttled), and after repeated wrong passwords for a "
        "username or from an address signing in is locked for a while, even with the right password (429 "
        "login_locked, with Retry-After; the same answer for any username). Only staff accounts (those that can "
        "use the console) get a token. Revoke it with POST /api/auth/logout. Every sign-in is audited.",
        tags=["Staff"],
        request=TokenRequestSerializer,
        responses={
            200: TOKEN_RESPONSE,
            400: ERROR_400,
            401: _refusal(
                "Wrong username or password, or not a staff account.", "invalid_credentials", INVALID_CREDENTIALS
            ),
            429: _refusal(
                "Signing in is locked (login_locked) or this address made too many attempts (throttled); "
                "Retry-After says when to try again.",
                "login_locked",
                lockout_message(900),
            ),
            **WRITE_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Sign in", request_only=True, value={"username": "riverside-admin", "password": "riverside-admin-demo"}
            ),
            OpenApiExample(
                "Signed in",
                response_only=True,
                status_codes=["200"],
                value={
                    "token": EXAMPLE_TOKEN,
                    "expires_at": "2026-03-03T02:05:09.120000Z",
                    "user": {
                        "username": "riverside-admin",
                        "operator": False,
                        "clinics": [
                            {
                                "id": "0b6d4c1e-2f3a-4b5c-8d9e-a1b2c3d4e5f6",
                                "slug": "riverside-family-medicine",
                                "name": "Riverside Family Medicine",
                                "role": Membership.Role.ADMIN.value,
                            }
                        ],
                    },
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user, token = api_sign_in(
                request=request._request,
                username=serializer.validated_data["username"],
                password=serializer.validated_data["password"],
            )
        except SignInRefused as refused:
            raise ApiError(refused.status, refused.code, refused.message, retry_after=refused.retry_after) from None
        memberships = list(
            Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")
        )
        audit_sign_in(request, user=user, organization_ids=[m.organization_id for m in memberships], via="api")
        body = {
            "token": token.key,
            "expires_at": serializers.DateTimeField().to_representation(token_expires_at(token)),
            "user": {
                "username": user.get_username(),
                "operator": user.is_superuser,
                "clinics": [
                    {
                        "id": m.organization_id,
                        "slug": m.organization.slug,
                        "name": m.organization.name,
                        "role": m.role,
                    }
                    for m in memberships
                ],
            },
        }
        return Response(body, status=status.HTTP_200_OK)
