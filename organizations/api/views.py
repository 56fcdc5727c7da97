"""GET/POST/PATCH /api/org/config/{org_id}: members read their clinic's configuration, clinic admins change it.
`org_id` is the clinic's id (a UUID, shown in the console) or its slug.

A user of another clinic gets 404 (never 403, never data); a staff member of the clinic gets 403 on writes.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import ERROR_400, ERROR_401, ERROR_403, ERROR_404, WRITE_ERRORS
from core.errors import ApiError
from organizations.access import can_administer, can_route_numbers, organizations_for_user
from organizations.api.serializers import MODEL_TO_API, OrganizationConfigSerializer, OrganizationConfigUpdateSerializer
from organizations.auth import STAFF_AUTHENTICATION
from organizations.models import CONFIG_LISTS, Organization
from organizations.services import NumberRoutingDenied, organization_config_update

CONFIG_EXAMPLE = {
    "id": "0b6d4c1e-2f3a-4b5c-8d9e-a1b2c3d4e5f6",
    "slug": "clinic-a",
    "name": "Clinic A",
    "timezone": "America/New_York",
    "publishable_key": "pk_Zx8…",
    "business_hours": [{"weekday": 0, "opens": "08:00:00", "closes": "17:00:00"}],
    "closures": [{"date": "2026-12-25", "label": "Christmas"}],
    "after_hours_policy": "take_message",
    "after_hours_message": "",
    "services": ["Primary care", "Vaccinations"],
    "providers": ["Dr. Maya Patel", "Jordan Lee, NP"],
    "escalation_phone": "+14155550100",
    "on_call_phone": "",
    "allowed_origins": ["https://clinic-a.example"],
    "event_forwarding": False,
    "webhook_url": "",
    "record_calls": False,
    "agent": {
        "voice": "marin",
        "languages": ["en", "es"],
        "greeting": "Thanks for calling Clinic A.",
        "extra_instructions": "",
        "max_call_minutes": 15,
        "vad_threshold": 0.5,
        "vad_silence_ms": 500,
        "turn_detection": "server_vad",
        "vad_eagerness": "auto",
        "idle_timeout_ms": None,
        "noise_reduction": "auto",
    },
    "intake_fields": [
        {"name": "patient_name", "field_type": "text", "required": True, "description": "Full name.", "choices": []}
    ],
    "escalation_phrases": [{"level": "emergency", "phrase": "can't breathe"}],
    "twilio_numbers": [],
    "is_open_now": False,
    "next_opening": "2026-03-03T08:00:00-05:00",
}

ORG_PARAMETER = OpenApiParameter(
    "org_id",
    # A slug's characters (a UUID is made of them too); anything else names no clinic (404).
    {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 64},
    OpenApiParameter.PATH,
    description="The clinic's id (a UUID, shown in the console on the clinic's page and in POST /api/auth/token's "
    "answer) or its slug, e.g. riverside-family-medicine.",
)

UPDATE_SCHEMA = extend_schema(
    request=OrganizationConfigUpdateSerializer,
    parameters=[ORG_PARAMETER],
    responses={
        200: OrganizationConfigSerializer,
        400: ERROR_400,
        401: ERROR_401,
        403: ERROR_403,
        404: ERROR_404,
        **WRITE_ERRORS,
    },
    tags=["Staff"],
    description="Clinic admins only (staff members get 403; other clinics' users 404). Partial update: only the "
    "fields sent change; a list (business_hours, closures, intake_fields, escalation_phrases, twilio_numbers) "
    "replaces the clinic's list. twilio_numbers may change for operators only (others may send it back "
    "unchanged). Everything is validated as in the console; errors name dotted paths such as "
    "business_hours.1.closes or agent.voice. Answers the new configuration.",
    examples=[
        OpenApiExample(
            "Change hours and the voice",
            request_only=True,
            value={
                "business_hours": [
                    {"weekday": 0, "opens": "08:00", "closes": "12:00"},
                    {"weekday": 0, "opens": "13:00", "closes": "17:00"},
                ],
                "agent": {"voice": "cedar"},
            },
        ),
        OpenApiExample("The new configuration", response_only=True, value=CONFIG_EXAMPLE),
    ],
)


def _config_queryset() -> QuerySet[Organization]:
    # Prefetched so is_open_now/next_opening and the lists cost a fixed number of queries.
    return Organization.objects.prefetch_related(*CONFIG_LISTS.values())


class OrganizationConfigView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    def _organization(self, request: Request, org_id: str) -> Organization:
        lookup: dict[str, object]
        try:
            lookup = {"pk": uuid.UUID(org_id)}
        except ValueError:
            lookup = {"slug": org_id}
        organization = (
            _config_queryset().filter(pk__in=organizations_for_user(request.user).values("pk")).filter(**lookup).first()
        )
        if organization is None:
            raise ApiError(404, "not_found", "No such clinic.")
        return organization

    @extend_schema(
        operation_id="org_config_retrieve",
        summary="A clinic's configuration",
        description="Any member of the clinic. Never includes deployment secrets or the webhook signing secret.",
        tags=["Staff"],
        parameters=[ORG_PARAMETER],
        responses={200: OrganizationConfigSerializer, 401: ERROR_401, 403: ERROR_403, 404: ERROR_404},
        examples=[OpenApiExample("Configuration", response_only=True, value=CONFIG_EXAMPLE)],
    )
    def get(self, request: Request, org_id: str) -> Response:
        return Response(OrganizationConfigSerializer(self._organization(request, org_id)).data)

    @extend_schema(operation_id="org_config_update", summary="Change a clinic's configuration (POST)")
    @UPDATE_SCHEMA
    def post(self, request: Request, org_id: str) -> Response:
        return self._update(request, org_id)

    @extend_schema(operation_id="org_config_partial_update", summary="Change a clinic's configuration (PATCH)")
    @UPDATE_SCHEMA
    def patch(self, request: Request, org_id: str) -> Response:
        return self._update(request, org_id)

    def _update(self, request: Request, org_id: str) -> Response:
        organization = self._organization(request, org_id)
        if not can_administer(request.user, organization):
            raise ApiError(403, "permission_denied", "Only the clinic's admins can change its configuration.")
        serializer = OrganizationConfigUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            organization_config_update(
                organization=organization,
                data=serializer.service_data(),
                may_route_numbers=can_route_numbers(request.user),
            )
        except NumberRoutingDenied:
            # The same answer whichever number was sent: no hint of which numbers other clinics have.
            raise ApiError(403, "permission_denied", "Only operators assign phone numbers to clinics.") from None
        except DjangoValidationError as error:
            fields = {MODEL_TO_API.get(key, key): messages for key, messages in error.message_dict.items()}
            message = "The configuration is not valid; see fields."
            raise ApiError(400, "validation_error", message, fields=fields) from None
        return Response(OrganizationConfigSerializer(_config_queryset().get(pk=organization.pk)).data)
