"""Twilio webhooks: check the signature, call one service, render TwiML. Nothing else lives here."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.audit import audit_request_actor
from core.drain import refuse_new_calls
from realtime.telephony import services
from realtime.telephony.signatures import request_is_from_twilio

CALL_SID_RE = re.compile(r"^CA[0-9A-Za-z]{1,62}$")


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
