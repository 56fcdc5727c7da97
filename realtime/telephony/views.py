"""Twilio webhooks: check the signature, call one service, render TwiML. Nothing else lives here."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from calls import paging
from calls.audit import audit_request_actor
from calls.services import escalation_acknowledge_by_sms
from core.drain import refuse_new_calls
from realtime.telephony import services
from realtime.telephony.signatures import request_is_from_twilio

CALL_SID_RE = re.compile(r"^CA[0-9A-Za-z]{1,62}$")
MESSAGE_SID_RE = re.compile(r"^(SM|MM)[0-9A-Za-z]{1,62}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def twilio_webhook(view: Callable[[HttpRequest, str], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """POST only, csrf-exempt, signature checked before anything is read or written; names Twilio as the actor of
    the audit rows; passes the CallSid on."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if not request_is_from_twilio(request):
            return _error(403, "invalid_signature", "Missing or invalid Twilio signature.")
        call_sid = request.POST.get("CallSid", "")
        if not CALL_SID_RE.match(call_sid):
            return _error(400, "invalid_call_sid", "CallSid is missing or malformed.")
        audit_request_actor(request, service="twilio", via="telephony")  # what this webhook changes, Twilio did
        return view(request, call_sid)

    return wrapper


def _twiml(document: str) -> HttpResponse:
    return HttpResponse(document, content_type="text/xml; charset=utf-8")


def _int_or_none(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number >= 0 else None


def _idempotency_token(request: HttpRequest) -> str:
    return request.headers.get("I-Twilio-Idempotency-Token", "")


@twilio_webhook
def voice(request: HttpRequest, call_sid: str) -> HttpResponse:
    if refuse_new_calls():  # deploy drain: fallback TwiML, never a 503 (Twilio would play an error)
        return _twiml(
            services.drained_call_answer(
                call_sid=call_sid, caller=request.POST.get("From", ""), called=request.POST.get("To", "")
            )
        )
    return _twiml(
        services.incoming_call_answer(
            call_sid=call_sid,
            caller=request.POST.get("From", ""),
            called=request.POST.get("To", ""),
            call_status=request.POST.get("CallStatus", "ringing"),
        )
    )


@twilio_webhook
def status(request: HttpRequest, call_sid: str) -> HttpResponse:
    services.call_status_update(
        call_sid=call_sid,
        call_status=request.POST.get("CallStatus", ""),
        duration=_int_or_none(request.POST.get("CallDuration")),
        idempotency_token=_idempotency_token(request),
    )
    return HttpResponse(status=204)


@twilio_webhook
def stream_ended(request: HttpRequest, call_sid: str) -> HttpResponse:
    return _twiml(services.stream_ended_answer(call_sid=call_sid, idempotency_token=_idempotency_token(request)))


@twilio_webhook
def dial_result(request: HttpRequest, call_sid: str) -> HttpResponse:
    return _twiml(
        services.dial_result_answer(
            call_sid=call_sid,
            leg=request.GET.get("leg", ""),
            dial_status=request.POST.get("DialCallStatus", ""),
            dial_call_sid=request.POST.get("DialCallSid", ""),
            duration=_int_or_none(request.POST.get("DialCallDuration")),
            idempotency_token=_idempotency_token(request),
        )
    )


@twilio_webhook
def voicemail(request: HttpRequest, call_sid: str) -> HttpResponse:
    return _twiml(
        services.voicemail_answer(
            call_sid=call_sid,
            recording_sid=request.POST.get("RecordingSid", ""),
            duration=_int_or_none(request.POST.get("RecordingDuration")),
        )
    )


@twilio_webhook
def recording_status(request: HttpRequest, call_sid: str) -> HttpResponse:
    services.recording_status_update(
        call_sid=call_sid,
        recording_sid=request.POST.get("RecordingSid", ""),
        recording_status=request.POST.get("RecordingStatus", ""),
        duration=_int_or_none(request.POST.get("RecordingDuration")),
        idempotency_token=_idempotency_token(request),
    )
    return HttpResponse(status=204)


@twilio_webhook
def call_recording_status(request: HttpRequest, call_sid: str) -> HttpResponse:
    services.call_recording_update(
        call_sid=call_sid,
        recording_sid=request.POST.get("RecordingSid", ""),
        recording_status=request.POST.get("RecordingStatus", ""),
        duration=_int_or_none(request.POST.get("RecordingDuration")),
        channels=_int_or_none(request.POST.get("RecordingChannels")),
        idempotency_token=_idempotency_token(request),
    )
    return HttpResponse(status=204)


def twilio_message_webhook(view: Callable[[HttpRequest, str], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """As twilio_webhook, for Messaging: the MessageSid instead of a CallSid."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if not request_is_from_twilio(request):
            return _error(403, "invalid_signature", "Missing or invalid Twilio signature.")
        message_sid = request.POST.get("MessageSid", "")
        if not MESSAGE_SID_RE.match(message_sid):
            return _error(400, "invalid_message_sid", "MessageSid is missing or malformed.")
        audit_request_actor(request, service="twilio", via="telephony")
        return view(request, message_sid)

    return wrapper


@twilio_message_webhook
def sms(request: HttpRequest, message_sid: str) -> HttpResponse:
    """An SMS to one of our numbers: `ACK` from a paged on-call number acknowledges what it was paged for. The reply
    says what happened; anything else (another text, an unknown number) changes nothing and gets no reply."""
    sender, ours = request.POST.get("From", ""), request.POST.get("To", "")
    response = MessagingResponse()
    if E164_RE.match(sender) and E164_RE.match(ours):
        acknowledged = escalation_acknowledge_by_sms(
            from_number=sender, to_number=ours, body=request.POST.get("Body", "")[:160]
        )
        if acknowledged:
            clinics = sorted({escalation.organization.name for escalation in acknowledged})
            response.message(f"Acknowledged {len(acknowledged)} escalation(s) at {', '.join(clinics)}. Thank you.")
    return _twiml(str(response))


@twilio_message_webhook
def sms_status(request: HttpRequest, message_sid: str) -> HttpResponse:
    paging.page_status_update(
        message_sid=message_sid,
        message_status=request.POST.get("MessageStatus", request.POST.get("SmsStatus", "")),
        error_code=request.POST.get("ErrorCode", "")[:16],
    )
    return HttpResponse(status=204)
