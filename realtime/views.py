"""Caller-side realtime endpoints: mint a browser session, report the OpenAI call id, forward events.

Thin: authentication, scoping and throttling come from calls.api.caller_auth; behaviour lives in
realtime.services and the call event pipeline. All three are async (adrf) and run their database
work off Django's shared sync thread (core.threads), which every other sync view of the process waits on: neither a
slow OpenAI nor a hostile caller can hold it.
"""

from __future__ import annotations

import re
import uuid

from adrf.views import APIView as AsyncAPIView
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from calls.api.caller_auth import CallerAPIView, caller_call, caller_organization
from calls.models import Call
from calls.services import ForwardingRefused
from core.api.schema import CALLER_ERRORS, ERROR_404, ERROR_409_CALL_ENDED, ERROR_409_SERVER_ATTACHED, error_response
from core.api.throttling import CallAdmissionThrottle
from core.errors import ApiError, refuse_if_draining
from core.observability import call_context
from core.threads import off_shared_thread
from realtime import forwarded, services
from realtime.upstream import UpstreamError

OPENAI_CALL_ID_RE = re.compile(r"^rtc_[A-Za-z0-9_-]{1,120}$")
MAX_EVENTS_PER_BATCH = 200


class SessionRequestSerializer(serializers.Serializer):
    call_id = serializers.UUIDField(required=False, help_text="Attach to this call (send its X-Call-Token).")


class RealtimeAttachSerializer(serializers.Serializer):
    # A RegexField, so the schema carries the pattern the server enforces.
    openai_call_id = serializers.RegexField(
        OPENAI_CALL_ID_RE,
        max_length=124,
        help_text="From the Location header of POST /realtime/calls (rtc_…).",
        error_messages={"invalid": "Expected an OpenAI call id like rtc_…"},
    )


class EventBatchSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.DictField(), max_length=MAX_EVENTS_PER_BATCH, help_text="GA server events, in order."
    )

    def validate_events(self, events: list[dict]) -> list[dict]:
        # The whole batch is refused before anything is stored when one event the pipeline acts on has a shape it
        # cannot read (ids over 128 characters, a non-object response or error, oversized text or arguments).
        problems = {
            f"{index}.{name}": [message]
            for index, event in enumerate(events)
            for name, message in forwarded.event_problems(event).items()
        }
        problems.update({name: [message] for name, message in forwarded.batch_problems(events).items()})
        if problems:
            raise serializers.ValidationError(problems)
        return events


UPSTREAM_ERRORS = {
    502: inline_serializer("UpstreamError502", {"error": serializers.DictField()}),
    504: inline_serializer("UpstreamError504", {"error": serializers.DictField()}),
}


def _upstream_error(exc: UpstreamError) -> ApiError:
    error = ApiError(exc.status, exc.code, exc.message)
    error.retry_after = exc.retry_after  # the circuit breaker's 503 says when to come back
    return error


class RealtimeSessionView(AsyncAPIView, CallerAPIView):
    throttle_classes = [CallAdmissionThrottle]  # may start a call: the clinic's admission budget, fair per address

    @extend_schema(
        operation_id="realtime_session",
        summary="Mint a browser Realtime session",
        description=(
            "Caller side (X-Org-Key). Without call_id it starts a web call (as /api/call/start) and returns its "
            "call_token once; with call_id (and X-Call-Token) it mints for that call. The returned client_secret "
            "is a short-lived OpenAI key limited to this clinic's session: use it for the WebRTC offer to "
            "OpenAI, then report the OpenAI call id to /api/calls/{call_id}/realtime."
        ),
        tags=["Caller side"],
        request=SessionRequestSerializer,
        responses={
            201: inline_serializer(
                "RealtimeSession",
                {
                    "call_id": serializers.UUIDField(),
                    "call_token": serializers.CharField(required=False),
                    "client_secret": inline_serializer(
                        "ClientSecret", {"value": serializers.CharField(), "expires_at": serializers.IntegerField()}
                    ),
                    "model": serializers.CharField(),
                    "voice": serializers.CharField(),
                    "session": serializers.DictField(),
                },
            ),
            **CALLER_ERRORS,
            404: ERROR_404,
            409: ERROR_409_CALL_ENDED,
            **UPSTREAM_ERRORS,
        },
        examples=[
            OpenApiExample("Start and mint in one round trip", request_only=True, value={}),
            OpenApiExample(
                "Minted",
                response_only=True,
                status_codes=["201"],
                value={
                    "call_id": "3f1c2a4e-8b7d-4c1e-9a2f-5d6e7f8a9b0c",
                    "call_token": "ct_4hY0m1…",
                    "client_secret": {"value": "ek_68af…", "expires_at": 1790000000},
                    "model": "gpt-realtime-2.1",
                    "voice": "marin",
                    "session": {
                        "type": "realtime",
                        "model": "gpt-realtime-2.1",
                        "audio": {"output": {"voice": "marin"}},
                    },
                },
            ),
        ],
    )
    async def post(self, request: Request) -> Response:
        refuse_if_draining()  # deploy drain: the balancer sends the retry to another process
        organization = caller_organization(request)
        serializer = SessionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        call_id = serializer.validated_data.get("call_id")
        call = None
        if call_id is not None:
            call = await off_shared_thread(caller_call, request, call_id)
            if call.is_ended:
                raise ApiError(409, "call_ended", "This call has already ended.")
        session = await off_shared_thread(services.session_for, organization)
        try:
            secret = await services.mint(session)
        except UpstreamError as exc:
            raise _upstream_error(exc) from None
        token = None
        if call is None:
            started, token = await off_shared_thread(services.web_call_start, organization)
            call = started
        with call_context(call.pk):
            body = {
                "call_id": str(call.pk),
                **({"call_token": token} if token else {}),
                "client_secret": {"value": secret.value, "expires_at": secret.expires_at},
                "model": secret.session.get("model", session["model"]),
                "voice": (secret.session.get("audio") or {})
                .get("output", {})
                .get("voice", session["audio"]["output"]["voice"]),
                "session": services.public_session(secret.session or session),
            }
        return Response(body, status=status.HTTP_201_CREATED)


class RealtimeAttachView(AsyncAPIView, CallerAPIView):
    @extend_schema(
        operation_id="realtime_attach",
        summary="Report the OpenAI call id so the server attaches to the call",
        description=(
            "Caller side (X-Org-Key + X-Call-Token). After the WebRTC offer to OpenAI answers 201, send the call id "
            "from its Location header. The server then attaches its sideband connection: it sees the transcript, "
            "runs the tools and triage, and keeps it until the call ends. Repeating the same id is harmless."
        ),
        tags=["Caller side"],
        request=RealtimeAttachSerializer,
        examples=[
            OpenApiExample(
                "The id from the Location header", request_only=True, value={"openai_call_id": "rtc_u1Xq9v3bC7dK2"}
            ),
            OpenApiExample(
                "Attached",
                response_only=True,
                status_codes=["202"],
                value={
                    "call_id": "3f1c2a4e-8b7d-4c1e-9a2f-5d6e7f8a9b0c",
                    "openai_call_id": "rtc_u1Xq9v3bC7dK2",
                    "sideband": "attached",
                },
            ),
        ],
        responses={
            202: inline_serializer(
                "RealtimeAttached",
                {
                    "call_id": serializers.UUIDField(),
                    "openai_call_id": serializers.CharField(),
                    "sideband": serializers.CharField(),
                },
            ),
            **CALLER_ERRORS,
            404: ERROR_404,
            409: error_response(
                "The call is attached to another OpenAI call (already_attached), or has ended (call_ended).",
                "already_attached",
                "This call is attached to another OpenAI call.",
            ),
        },
    )
    async def post(self, request: Request, call_id: uuid.UUID) -> Response:
        serializer = RealtimeAttachSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        openai_call_id = serializer.validated_data["openai_call_id"]
        call = await off_shared_thread(caller_call, request, call_id)
        with call_context(call.pk):
            outcome = await off_shared_thread(services.openai_call_link, call=call, openai_call_id=openai_call_id)
            if outcome == services.LINK_CONFLICT:
                raise ApiError(409, "already_attached", "This call is attached to another OpenAI call.")
            if outcome == services.LINK_ENDED:
                raise ApiError(409, "call_ended", "This call has already ended.")
            started = services.sideband_start(call_id=str(call.pk), openai_call_id=openai_call_id)
        return Response(
            {
                "call_id": str(call.pk),
                "openai_call_id": openai_call_id,
                "sideband": "attached" if started else "running",
            },
            status=status.HTTP_202_ACCEPTED,
        )


class CallEventsView(AsyncAPIView, CallerAPIView):
    @extend_schema(
        operation_id="call_events",
        summary="Forward Realtime server events (for frontends the server cannot attach to)",
        description=(
            "Caller side (X-Org-Key + X-Call-Token). Send the GA server events your data channel received (in "
            "order; resending is harmless). The answer lists the client events you must send back to OpenAI "
            "(tool outputs, response.create), in order. At most 200 events per batch, 16 of them tool calls "
            "(completed function_call items). A batch is all or nothing: "
            "when one event the pipeline acts on has a shape it cannot read (ids over 128 characters, a response "
            "or error that is not an object, oversized text or arguments, token counts that are not whole "
            "numbers) the whole batch answers 400 validation_error with the event's index in the field path and "
            "nothing is stored; event types the pipeline does not act on are skipped. Any clinic may forward the "
            "caller's transcription events. Agent lines, responses, tool calls, usage and errors are accepted only "
            "when the clinic turned on event forwarding (403 event_forwarding_off otherwise) and the server is not "
            "attached to the call (409 server_attached). Stored lines are marked as forwarded. After the call "
            "ended only caller lines count, and the call token stops working 2 minutes after the end."
        ),
        tags=["Caller side"],
        request=EventBatchSerializer,
        examples=[
            OpenApiExample(
                "A caller's line and the agent's answer",
                request_only=True,
                value={
                    "events": [
                        {
                            "type": "conversation.item.input_audio_transcription.completed",
                            "event_id": "event_101",
                            "item_id": "item_001",
                            "content_index": 0,
                            "transcript": "I'd like to book a checkup.",
                        },
                        {
                            "type": "response.output_audio_transcript.done",
                            "event_id": "event_102",
                            "response_id": "resp_001",
                            "item_id": "item_002",
                            "output_index": 0,
                            "content_index": 0,
                            "transcript": "Of course. May I have the patient's full name?",
                        },
                    ]
                },
            ),
            OpenApiExample(
                "Nothing to send back",
                response_only=True,
                status_codes=["200"],
                value={"client_events": [], "call_status": "in_progress"},
            ),
        ],
        responses={
            200: inline_serializer(
                "CallEventsResult",
                {
                    "client_events": serializers.ListField(child=serializers.DictField()),
                    "call_status": serializers.ChoiceField(choices=Call.Status.choices),
                },
            ),
            **CALLER_ERRORS,
            404: ERROR_404,
            409: ERROR_409_SERVER_ATTACHED,
        },
    )
    async def post(self, request: Request, call_id: uuid.UUID) -> Response:
        serializer = EventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        events = serializer.validated_data["events"]
        # Off the shared sync thread: a hostile caller's batches must not delay the staff API or the console.
        call = await off_shared_thread(caller_call, request, call_id)
        with call_context(call.pk):
            try:
                result, call = await off_shared_thread(services.forwarded_events_handle, call=call, events=events)
            except ForwardingRefused as refused:
                raise ApiError(refused.status, refused.code, refused.message) from None
        return Response({"client_events": result.client_events, "call_status": call.status})
