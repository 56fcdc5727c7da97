"""Staff escalation endpoints: escalate or de-escalate a call, list escalations, acknowledge and resolve them.

Every lookup goes through organizations.access (another clinic's ids answer 404, never 403); every change goes
through calls.services, the same functions the console and the live board use, which record who and when and
notify the board after commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from calls.audit import audit_read, audit_request_actor
from calls.models import Call, Escalation, EscalationSource
from calls.services import call_deescalate, call_escalate_by_staff, escalation_acknowledge, escalation_resolve
from core.api.fields import TextField
from core.api.schema import ERROR_400, ERROR_401, ERROR_403, ERROR_404, WRITE_ERRORS
from core.errors import ApiError
from organizations.access import organizations_for_user, scope_for_user, signed_in
from organizations.auth import STAFF_AUTHENTICATION

STAFF_LEVELS = [Escalation.Level.EMERGENCY, Escalation.Level.URGENT, Escalation.Level.HUMAN]
WRITE_RESPONSES = {400: ERROR_400, 401: ERROR_401, 403: ERROR_403, 404: ERROR_404, **WRITE_ERRORS}
EXAMPLE_ESCALATION = {
    "id": "9c2d7a1e-4b3f-4e8a-9d1c-2b3a4c5d6e7f",
    "call_id": "3f1c2a4e-8b7d-4c1e-9a2f-5d6e7f8a9b0c",
    "organization_id": "0b6d4c1e-2f3a-4b5c-8d9e-a1b2c3d4e5f6",
    "level": Escalation.Level.EMERGENCY.value,
    "source": EscalationSource.KEYWORD.value,
    "reason": "chest_pain",
    "status": Escalation.Status.ACKNOWLEDGED.value,
    "created_at": "2026-03-02T14:05:31.204000Z",
    "acknowledged_by": {"id": 7, "username": "sam"},
    "acknowledged_at": "2026-03-02T14:05:52.880000Z",
    "resolved_by": None,
    "resolved_at": None,
    "resolution_note": "",
}


# --- Serializers --------------------------------------------------------------------------------------------------


class EscalationActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


@extend_schema_field(
    {"type": "string", "description": "emergency, urgent, human (caller asked for a person) or uncertain (agent)."}
)
class LevelOutField(serializers.CharField):
    """Documented as a plain string: the Level enum component belongs to the call detail's Escalation schema, and a
    second component using the same enum would make its generated name collide."""


class StaffEscalationSerializer(serializers.ModelSerializer):
    level = LevelOutField(read_only=True)
    call_id = serializers.UUIDField(read_only=True)
    organization_id = serializers.UUIDField(read_only=True)
    acknowledged_by = EscalationActorSerializer(read_only=True, allow_null=True)
    resolved_by = EscalationActorSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Escalation
        fields = [
            "id",
            "call_id",
            "organization_id",
            "level",
            "source",
            "reason",
            "status",
            "created_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "resolution_note",
            "forwarded",
        ]
        read_only_fields = fields
        extra_kwargs = {"forwarded": {"help_text": "Raised from what the browser reported (event forwarding)."}}


@extend_schema_field({"type": "string", "enum": [str(level) for level in STAFF_LEVELS]})
class StaffLevelField(serializers.ChoiceField):
    """The levels staff may set (not `uncertain`); documented inline so it does not collide with the Level enum."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=STAFF_LEVELS, **kwargs)


class EscalateInputSerializer(serializers.Serializer):
    level = StaffLevelField()
    reason = TextField(max_length=300, required=False, allow_blank=True, default="")


class NoteInputSerializer(serializers.Serializer):
    note = TextField(max_length=2000, required=False, allow_blank=True, default="")


class ResolveInputSerializer(serializers.Serializer):
    note = TextField(
        max_length=2000, help_text="Required: what was done (stored with the escalation, shown to colleagues)."
    )


class DeescalateResultSerializer(serializers.Serializer):
    call_id = serializers.UUIDField()
    escalated = serializers.BooleanField()
    escalation_level = serializers.CharField(allow_blank=True)
    resolved = StaffEscalationSerializer(many=True, help_text="The escalations this request resolved.")


class EscalationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Escalation.Status.choices, required=False)
    level = serializers.ChoiceField(choices=Escalation.Level.choices, required=False)
    organization = serializers.UUIDField(required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=100, required=False)
    cursor = TextField(required=False)


# --- Helpers ------------------------------------------------------------------------------------------------------


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    # No body is an empty one (DRF gives {}); a JSON null is not an object, as the schema says: 400.
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _escalations_for(request: Request) -> QuerySet[Escalation]:
    return scope_for_user(Escalation.objects.all(), request.user).select_related("acknowledged_by", "resolved_by")


def _escalation_or_404(request: Request, escalation_id: uuid.UUID) -> Escalation:
    escalation = _escalations_for(request).filter(pk=escalation_id).first()
    if escalation is None:
        raise NotFound()
    return escalation


def _call_or_404(request: Request, call_id: uuid.UUID) -> Call:
    call = scope_for_user(Call.objects.select_related("organization"), request.user).filter(pk=call_id).first()
    if call is None:
        raise NotFound()
    return call


def _out(escalation: Escalation) -> dict[str, Any]:
    fresh = Escalation.objects.select_related("acknowledged_by", "resolved_by").get(pk=escalation.pk)
    return StaffEscalationSerializer(fresh).data


class EscalationCursorPagination(CursorPagination):
    """Newest first; a malformed or forged cursor answers 400, never 404 or 500."""

    ordering = ("-created_at", "-id")
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except (NotFound, UnicodeError, ValueError):
            cursor = None
        else:
            if cursor is None or cursor.position is None:
                return cursor
            try:
                parsed = parse_datetime(str(cursor.position))  # a str from the query string; the stubs say int
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return cursor
        raise ApiError(
            400,
            "validation_error",
            "The cursor is not valid; use the next/previous links as given.",
            fields={"cursor": ["Invalid cursor."]},
        )

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = [p for p in super().get_schema_operation_parameters(view) if p["name"] == "cursor"]
        for parameter in parameters:
            parameter["schema"]["minLength"] = 1  # a blank cursor is a 400, as the server enforces
        return parameters


class StaffView(GenericAPIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        audit_request_actor(request, via="api")  # the staff user acts, through the API


# --- Views --------------------------------------------------------------------------------------------------------


class EscalationListView(StaffView):
    serializer_class = StaffEscalationSerializer
    pagination_class = EscalationCursorPagination

    @extend_schema(
        operation_id="escalations_list",
        summary="List escalations",
        description="Staff: escalations of your clinics, newest first, cursor-paginated (follow next/previous as "
        "given). Filter by `status` (open, acknowledged, resolved), `level` and `organization` (another clinic's id "
        "answers 404).",
        tags=["Escalations"],
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=Escalation.Status.values),
            OpenApiParameter("level", OpenApiTypes.STR, enum=Escalation.Level.values),
            OpenApiParameter("organization", OpenApiTypes.UUID),
            OpenApiParameter(
                "page_size", {"type": "integer", "minimum": 1, "maximum": 100}, description="1-100, default 25."
            ),
        ],
        responses={200: StaffEscalationSerializer(many=True), 400: ERROR_400, 401: ERROR_401, 404: ERROR_404},
    )
    def get(self, request: Request) -> Response:
        query = _validated(EscalationListQuerySerializer, request.query_params.dict())
        queryset = _escalations_for(request)
        if "organization" in query:
            queryset = queryset.filter(organization_id=query["organization"])
            if not organizations_for_user(request.user).filter(pk=query["organization"]).exists():
                raise NotFound()
        if "status" in query:
            queryset = queryset.filter(status=query["status"])
        if "level" in query:
            queryset = queryset.filter(level=query["level"])
        page = self.paginate_queryset(queryset)
        audit_read(
            request, action="list", objects=page or [], via="api", object_type="escalation"
        )  # audit hook, fail closed
        return self.get_paginated_response(StaffEscalationSerializer(page, many=True).data)


class CallEscalateView(StaffView):
    @extend_schema(
        operation_id="call_escalate",
        summary="Escalate a call (staff override)",
        description="Creates a staff escalation of `level` on the call, marks the call escalated and alerts the "
        "live board (and the clinic webhook). If the call already has an unresolved escalation of that level it is "
        "returned unchanged with 200 instead of a second alert. Who and when are recorded in the call's "
        "staff_actions.",
        tags=["Escalations"],
        request=EscalateInputSerializer,
        responses={201: StaffEscalationSerializer, 200: StaffEscalationSerializer, **WRITE_RESPONSES},
        examples=[
            OpenApiExample(
                "Escalate",
                request_only=True,
                value={"level": Escalation.Level.URGENT.value, "reason": "callback requested"},
            ),
            OpenApiExample("Created", response_only=True, status_codes=["201"], value=EXAMPLE_ESCALATION),
        ],
    )
    def post(self, request: Request, call_id: uuid.UUID) -> Response:
        call = _call_or_404(request, call_id)
        data = _validated(EscalateInputSerializer, request.data)
        escalation, created = call_escalate_by_staff(
            call=call, user=signed_in(request.user), level=data["level"], reason=data["reason"]
        )
        return Response(_out(escalation), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CallDeescalateView(StaffView):
    @extend_schema(
        operation_id="call_deescalate",
        summary="De-escalate a call (staff override)",
        description="Resolves every unresolved escalation of the call in your name (with `note`) and clears the "
        "call's escalated flag and level. The escalations stay as the record; a later trigger escalates the call "
        "again. Repeating it changes nothing more.",
        tags=["Escalations"],
        request=NoteInputSerializer,
        responses={200: DeescalateResultSerializer, **WRITE_RESPONSES},
        examples=[
            OpenApiExample(
                "De-escalate with a note",
                request_only=True,
                value={"note": "Called back: a routine question, not an emergency."},
            ),
            OpenApiExample("Without a note", request_only=True, value={}),
        ],
    )
    def post(self, request: Request, call_id: uuid.UUID) -> Response:
        call = _call_or_404(request, call_id)
        data = _validated(NoteInputSerializer, request.data)
        call, resolved = call_deescalate(call=call, user=signed_in(request.user), note=data["note"])
        body = {
            "call_id": str(call.pk),
            "escalated": call.escalated,
            "escalation_level": call.escalation_level,
            "resolved": [_out(escalation) for escalation in resolved],
        }
        return Response(body)


class EscalationAcknowledgeView(StaffView):
    @extend_schema(
        operation_id="escalation_acknowledge",
        summary="Acknowledge an escalation",
        description="Open → acknowledged, recording who and when; the board moves it out of the open list. "
        "Idempotent: acknowledging an acknowledged or resolved escalation answers 200 and changes nothing.",
        tags=["Escalations"],
        request=None,
        responses={200: StaffEscalationSerializer, 401: ERROR_401, 403: ERROR_403, 404: ERROR_404},
    )
    def post(self, request: Request, escalation_id: uuid.UUID) -> Response:
        escalation = _escalation_or_404(request, escalation_id)
        return Response(_out(escalation_acknowledge(escalation=escalation, user=signed_in(request.user))))


class EscalationResolveView(StaffView):
    @extend_schema(
        operation_id="escalation_resolve",
        summary="Resolve an escalation",
        description="→ resolved with a short `note` (required: what was done), recording who and when (and "
        "acknowledging it in your name if nobody had). Idempotent: resolving a resolved escalation answers 200 and "
        "changes nothing.",
        tags=["Escalations"],
        request=ResolveInputSerializer,
        responses={200: StaffEscalationSerializer, **WRITE_RESPONSES},
        examples=[
            OpenApiExample(
                "Resolve with a note", request_only=True, value={"note": "Patient reached 911; the clinic followed up."}
            ),
            OpenApiExample("Without a note", request_only=True, value={}),
            OpenApiExample("Resolved", response_only=True, value=EXAMPLE_ESCALATION),
        ],
    )
    def post(self, request: Request, escalation_id: uuid.UUID) -> Response:
        escalation = _escalation_or_404(request, escalation_id)
        data = _validated(ResolveInputSerializer, request.data)
        return Response(
            _out(escalation_resolve(escalation=escalation, user=signed_in(request.user), note=data["note"]))
        )
