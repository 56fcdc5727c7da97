"""Call endpoints: the caller side starts and ends calls; staff list, read and end them. Views are thin: they
authenticate, scope, validate and call calls.services."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import cast

from adrf.views import APIView as AsyncAPIView
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from calls.api.caller_auth import (
    ORG_KEY_HEADER,
    CallerAPIView,
    CallerContext,
    CallerOrgAuthentication,
    IsCallerOrStaff,
    caller_call,
    caller_organization,
    require_call_token,
)
from calls.api.filters import CallFilterSet
from calls.api.pagination import DEFAULT_ORDERING, MAX_PAGE_SIZE, CallCursorPagination, PagedRequest
from calls.api.queries import (
    call_detail,
    caller_transcript,
    calls_for_user,
    calls_with_detail,
    calls_with_summary,
)
from calls.api.serializers import (
    CallDetailSerializer,
    CallEndSerializer,
    CallStartSerializer,
    StaffCallDetailSerializer,
    StaffCallListSerializer,
)
from calls.audit import audit_read
from calls.conversation import call_end_with_transcript
from calls.models import Call, TranscriptSegment
from calls.services import (
    ForwardingRefused,
    IntakeInvalid,
    SegmentInput,
    call_start,
    caller_report_check,
    forwarded_records_before,
    forwarded_records_mark,
)
from core.api.schema import (
    CALL_START_RESPONSE,
    CALLER_ERRORS,
    ERROR_404,
    ERROR_409_SERVER_ATTACHED,
    STAFF_READ_ERRORS,
)
from core.api.throttling import CallAdmissionThrottle, CallerOrgThrottle
from core.errors import ApiError, refuse_if_draining
from core.observability import call_context
from core.threads import off_shared_thread
from organizations.auth import STAFF_AUTHENTICATION
from organizations.vocabulary import Urgency

EXAMPLE_CALL_ID = "3f1c2a4e-8b7d-4c1e-9a2f-5d6e7f8a9b0c"
EXAMPLE_ORG_ID = "0b6d4c1e-2f3a-4b5c-8d9e-a1b2c3d4e5f6"

CALL_DETAIL_EXAMPLE = OpenApiExample(
    "A completed call",
    response_only=True,
    value={
        "id": EXAMPLE_CALL_ID,
        "organization": EXAMPLE_ORG_ID,
        "channel": Call.Channel.WEB.value,
        "status": Call.Status.COMPLETED.value,
        "started_at": "2026-03-02T14:05:09.120000Z",
        "ended_at": "2026-03-02T14:08:41.503000Z",
        "duration_seconds": 212,
        "escalated": False,
        "escalation_level": "",
        "urgency": Urgency.ROUTINE.value,
        "caller_name": "Ana Diaz",
        "caller_phone": "+14155550123",
        "transcript_segments": 2,
        "intake_completed": True,
        "reviewed": False,
        "transcript": [
            {
                "seq": 1,
                "speaker": TranscriptSegment.Speaker.AGENT.value,
                "text": "Clinic A, how can I help you today?",
                "occurred_at": "2026-03-02T14:05:10Z",
                "interrupted": True,
                "heard_ms": 900,
            },
            {
                "seq": 2,
                "speaker": TranscriptSegment.Speaker.CALLER.value,
                "text": "A checkup, please.",
                "occurred_at": "2026-03-02T14:05:15Z",
                "interrupted": False,
                "heard_ms": None,
            },
        ],
        "intake": {
            "data": {
                "patient_name": "Ana Diaz",
                "date_of_birth": "1984-07-12",
                "callback_number": "+14155550123",
                "reason_for_call": "Annual checkup",
                "urgency": Urgency.ROUTINE.value,
            },
            "urgency": Urgency.ROUTINE.value,
            "completed": True,
        },
        "escalations": [],
    },
)

STAFF_CALL_DETAIL_EXAMPLE = OpenApiExample(
    "A completed call",
    response_only=True,
    value={
        **CALL_DETAIL_EXAMPLE.value,
        "usage": {
            "input_text_tokens": 5200,
            "input_audio_tokens": 1800,
            "input_cached_tokens": 3100,
            "output_text_tokens": 420,
            "output_audio_tokens": 2600,
            "transcription_tokens": 0,
            "transcription_audio_ms": 61000,
        },
        "estimated_cost_usd": "0.261003",
        "turn_latency_ms": {"p50": 820, "p95": 1430, "turns": 6},
        "summary": {
            "status": "done",
            "summary": "The caller booked a check-up for Tuesday morning and asked for a call back to confirm.",
            "reason_for_call": "Book a check-up",
            "follow_up_needed": True,
            "model": "gpt-5.4-mini",
            "attempts": 1,
            "completed_at": "2026-12-02T15:04:12Z",
        },
    },
)


class CallStartView(AsyncAPIView, CallerAPIView):
    throttle_classes = [CallAdmissionThrottle]  # a new call: the clinic's admission budget, fair per address

    @extend_schema(
        operation_id="call_start",
        summary="Start a web call",
        description="Caller side: authenticate with the clinic's publishable key (X-Org-Key). Creates a live call "
        "and returns its call_token once; send it as X-Call-Token on this call's later requests. Every field is "
        "optional: `{}` starts an anonymous web call (the agent takes the caller's details in the intake).",
        tags=["Caller side"],
        request=CallStartSerializer,
        responses={201: CALL_START_RESPONSE, **CALLER_ERRORS},
        examples=[
            OpenApiExample("Start an anonymous web call", request_only=True, value={}),
            OpenApiExample(
                "Start a web call with what the page knows",
                request_only=True,
                value={
                    "channel": "web",
                    "caller": {"name": "Ana Diaz", "phone": "+14155550123"},
                    "metadata": {"page": "/book"},
                },
            ),
            OpenApiExample(
                "Started",
                response_only=True,
                status_codes=["201"],
                value={
                    "call_id": EXAMPLE_CALL_ID,
                    "call_token": "ct_4hY0m1…",
                    "status": Call.Status.IN_PROGRESS.value,
                    "started_at": "2026-03-02T14:05:09.120000Z",
                    "organization": {"id": EXAMPLE_ORG_ID, "name": "Clinic A"},
                },
            ),
        ],
    )
    async def post(self, request: Request) -> Response:
        refuse_if_draining()  # deploy drain: the balancer sends the retry to another process
        organization = caller_organization(request)
        serializer = CallStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = data.get("caller") or {}  # optional: `{}` starts an anonymous web call
        call, token = await off_shared_thread(  # caller-side work never runs on the shared sync thread
            call_start,
            organization=organization,
            channel=data["channel"],
            caller_name=caller.get("name", ""),
            caller_phone=caller.get("phone", ""),
            client_metadata=data["metadata"],
        )
        body = {
            "call_id": call.pk,
            "call_token": token,
            "status": call.status,
            "started_at": serializers.DateTimeField().to_representation(call.started_at),
            "organization": {"id": organization.pk, "name": organization.name},
        }
        return Response(body, status=status.HTTP_201_CREATED)


class CallEndView(AsyncAPIView, CallerAPIView):
    """Caller side (X-Org-Key + X-Call-Token) or staff (session or token, scoped to their clinics)."""

    authentication_classes = [CallerOrgAuthentication, *STAFF_AUTHENTICATION]
    permission_classes = [IsCallerOrStaff]
    throttle_classes = [CallerOrgThrottle]
    # Staff end calls here too, unthrottled: only requests with the clinic's key count against the address limit.
    caller_ip_throttled = False
    caller_ip_throttled_with_org_key = True

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        # Only caller-side requests count against the caller throttles; staff dashboards are not rate limited here.
        if request.headers.get(ORG_KEY_HEADER) is not None:
            super().initial(request, *args, **kwargs)
        else:
            super(CallerAPIView, self).initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="call_end",
        summary="End a call",
        description="Finalizes the call: completed (failed for reason=error), ended_at and duration; merges the "
        "transcript (segments with an already stored item_id are stored once) and validates and stores the intake "
        "against the clinic's intake fields. Idempotent: ending an ended call answers 200 with the call as it is. "
        "Caller side: X-Org-Key and the call's X-Call-Token. Staff: session or Authorization: Token.",
        tags=["Caller side"],
        request=CallEndSerializer,
        parameters=[
            OpenApiParameter(
                "X-Call-Token",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="Caller side: the call_token from /api/call/start (required with X-Org-Key).",
            )
        ],
        responses={200: CallDetailSerializer, **CALLER_ERRORS, 404: ERROR_404, 409: ERROR_409_SERVER_ATTACHED},
        examples=[
            OpenApiExample(
                "End with transcript and intake",
                request_only=True,
                value={
                    "call_id": EXAMPLE_CALL_ID,
                    "reason": "caller_hangup",
                    "transcript": [
                        {"speaker": "agent", "text": "Thanks for calling Clinic A.", "item_id": "item_001"},
                        {"speaker": "caller", "text": "I'd like to book a checkup.", "item_id": "item_002"},
                    ],
                    "intake": {
                        "patient_name": "Ana Diaz",
                        "date_of_birth": "1984-07-12",
                        "callback_number": "+14155550123",
                        "reason_for_call": "Annual checkup",
                        "urgency": "routine",
                    },
                },
            ),
            CALL_DETAIL_EXAMPLE,
        ],
    )
    async def post(self, request: Request) -> Response:
        is_caller = isinstance(request.auth, CallerContext)
        if is_caller:
            require_call_token(request)  # 401 before looking at the body
        serializer = CallEndSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Off the shared sync thread: a caller's transcript is triaged line by line, which it can make slow.
        return await off_shared_thread(self._end, request, serializer.validated_data, is_caller=is_caller)

    def _end(self, request: Request, data: dict, *, is_caller: bool) -> Response:
        call: Call | None
        if is_caller:
            call = caller_call(request, data["call_id"])
        else:
            call = calls_for_user(request.user).select_related("organization").filter(pk=data["call_id"]).first()
            if call is None:
                raise ApiError(404, "not_found", "No such call.")
        segments = [
            SegmentInput(
                speaker=item["speaker"], text=item["text"], occurred_at=item["timestamp"], item_id=item["item_id"]
            )
            for item in data["transcript"]
        ]
        with call_context(call.pk):
            try:
                before = None
                if is_caller:
                    segments = caller_report_check(call=call, segments=segments, intake=data["intake"])
                    before = forwarded_records_before(call)
                # Every caller line sent with the end is triaged like a live one (calls.conversation).
                call_end_with_transcript(call=call, reason=data["reason"], transcript=segments, intake=data["intake"])
                if before is not None:  # what the browser reported is marked as such
                    forwarded_records_mark(call=call, before=before)
            except IntakeInvalid as invalid:
                fields = {
                    "intake" if name == "non_field_errors" else f"intake.{name}": messages
                    for name, messages in invalid.result.errors.items()
                }
                raise ApiError(400, "validation_error", "The intake is not valid; see fields.", fields=fields) from None
            except ForwardingRefused as refused:
                raise ApiError(refused.status, refused.code, refused.message) from None
        return Response(CallDetailSerializer(call_detail(call.pk)).data)


class TranscriptQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, default=0, help_text="Only lines after this seq (the last one you have)."
    )


class CallerTranscriptView(CallerAPIView):
    @extend_schema(
        operation_id="call_transcript",
        summary="The call's transcript so far, for the caller's own page",
        description="Caller side (X-Org-Key + X-Call-Token). The caller and agent lines the server stored (what the "
        "clinic will review), oldest first, after `after`; poll with the last seq you have. System notes are staff "
        "only. Readable while the call token works: during the call and for 2 minutes after it ended (then 401 "
        "call_token_expired).",
        tags=["Caller side"],
        parameters=[TranscriptQuerySerializer],
        responses={
            200: inline_serializer(
                "CallerTranscript",
                {
                    "call_status": serializers.ChoiceField(choices=Call.Status.choices),
                    "segments": inline_serializer(
                        "CallerTranscriptLine",
                        {
                            "seq": serializers.IntegerField(),
                            # One speaker vocabulary in the schema; system notes are never sent here.
                            "speaker": serializers.ChoiceField(choices=TranscriptSegment.Speaker.choices),
                            "text": serializers.CharField(),
                        },
                        many=True,
                    ),
                },
            ),
            **{code: CALLER_ERRORS[code] for code in (400, 401, 403, 429)},
            404: ERROR_404,
        },
    )
    def get(self, request: Request, call_id: uuid.UUID) -> Response:
        query = TranscriptQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        call = caller_call(request, call_id)
        segments = caller_transcript(call, after=query.validated_data["after"])
        if segments:  # audit hook (calls.audit), fail closed; a poll that returns no lines reads no patient data
            audit_read(request, action="view", objects=[call], via="api", details={"part": "transcript"})
        return Response(
            {
                "call_status": call.status,
                "segments": [{"seq": s.seq, "speaker": s.speaker, "text": s.text} for s in segments],
            }
        )


class CallListView(generics.ListAPIView[Call]):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    serializer_class = StaffCallListSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = CallFilterSet
    pagination_class = CallCursorPagination
    ordering_param = DEFAULT_ORDERING

    def get_queryset(self) -> QuerySet[Call]:
        return calls_with_summary(calls_for_user(self.request.user)).select_related("summary")

    # The stubs make these two generic over the row type (a values() queryset's rows); here the rows are calls.
    def filter_queryset[R](self, queryset: QuerySet[Call, R]) -> QuerySet[Call, R]:
        filterset = CallFilterSet(data=self.request.query_params, queryset=queryset, request=self.request)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        cleaned = filterset.form.cleaned_data
        self.ordering_param = cleaned.get("ordering") or DEFAULT_ORDERING
        cast(PagedRequest, self.request).validated_page_size = cleaned.get("page_size")
        return filterset.qs

    def paginate_queryset[R](self, queryset: QuerySet[Call, R] | Sequence[R]) -> list[R] | None:
        page = super().paginate_queryset(queryset)
        # Audit hook (calls.audit): recorded before serialising; a failed write answers 503 with no data.
        audit_read(
            self.request,
            action="search" if self.request.query_params.get("q") else "list",
            objects=cast(list[Call], page or []),
            via="api",
            object_type="call",
        )
        return page

    @extend_schema(
        operation_id="calls_list",
        summary="List calls",
        description="Staff: the calls of one of your clinics, newest first by default, cursor-paginated (follow "
        "next/previous as given). `organization` is required when you belong to several clinics "
        "(400 organization_required); another clinic answers 404.",
        tags=["Staff"],
        # The filter set's bounds, which drf-spectacular does not read from django-filter's min/max.
        parameters=[
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                description="Results per page (default 25, max 100).",
            )
        ],
        responses={200: StaffCallListSerializer(many=True), **STAFF_READ_ERRORS},
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class CallDetailView(generics.RetrieveAPIView[Call]):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    serializer_class = StaffCallDetailSerializer

    def get_object(self) -> Call:
        calls = calls_with_detail(calls_for_user(self.request.user)).select_related("summary")
        call = calls.filter(pk=self.kwargs["call_id"]).first()
        if call is None:
            raise ApiError(404, "not_found", "No such call.")
        audit_read(self.request, action="view", objects=[call], via="api")  # audit hook (calls.audit), fail closed
        return call

    @extend_schema(
        operation_id="calls_retrieve",
        summary="One call with transcript, intake, escalations, usage and cost",
        description="Staff: another clinic's call answers 404.",
        tags=["Staff"],
        responses={
            200: StaffCallDetailSerializer,
            401: STAFF_READ_ERRORS[401],
            403: STAFF_READ_ERRORS[403],
            404: ERROR_404,
        },
        examples=[STAFF_CALL_DETAIL_EXAMPLE],
    )
    def get(self, request: Request, call_id: uuid.UUID) -> Response:
        return super().get(request, call_id=call_id)
