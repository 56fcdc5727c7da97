"""Staff API token revocation: `POST /api/auth/logout`."""

from __future__ import annotations

from django.contrib.auth import logout
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import ERROR_401
from organizations.auth import ExpiringTokenAuthentication


class LogoutView(APIView):
    """Revokes the caller's API token (and ends a console session used for the request)."""

    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout",
        summary="Revoke your API token",
        description="Deletes the token sent in `Authorization: Token <key>` (it answers 401 from now on) and ends "
        "the console session if the request used one.",
        tags=["Staff"],
        request=None,
        responses={204: None, 401: ERROR_401},
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, Token):
            Token.objects.filter(pk=request.auth.pk).delete()
        if request.session.get("_auth_user_id") is not None:
            logout(request._request)
        return Response(status=204)
