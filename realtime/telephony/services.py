"""Phone-call workflows behind the Twilio webhooks, and the stream-token handshake the media bridge uses.

Twilio webhooks carry no timestamp, so replay safety is ours (docs/facts.md#twilio-replay):
- every state change is monotonic (a terminal call stays terminal; "ringing" after "in-progress" is ignored);
- the I-Twilio-Idempotency-Token of each processed webhook is remembered on the call (metadata, last few only), so a
  redelivery changes nothing: it is answered with the same kind of TwiML (Twilio retries must still get a response
  a caller can hear) but writes nothing;
- the token is not signed, so a replay may carry a fresh one: the dial and recording callbacks are also deduplicated
  on their natural keys (DialCallSid + status, RecordingSid + status), and a replay never files an escalation again;
- /twilio/voice is idempotent by CallSid: only the first answer carries a stream token; any later one (a retry or a
  replay of the signed request) gets the fallback TwiML, never a token, and the first token keeps working.

What we keep in call.metadata (ids and outcomes only, never patient data):
  metadata["twilio"] = {"number": clinic's dialled number, "mode": open|take_message|emergency_only|forward_on_call,
                        "status": latest Twilio CallStatus, "stream_outcome": goodbye|transfer,
                        "fallback": dial|voicemail, "seen": [idempotency tokens], "stream_token_issued_at": iso}
  metadata["transfer"] = {"leg", "outcome": answered|busy|no-answer|failed|canceled, "dial_call_sid", "duration"}
  metadata["voicemail"] = {"recording_sid", "duration", "status"}
  metadata["recording"] = {"recording_sid", "duration", "status", "channels"}  (the whole call, when recorded)
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.audit import Action, audit_change
from calls.models import Call, Escalation, hash_call_token
from calls.services import call_end, call_start, escalation_create
from organizations.models import Organization, TwilioNumber
from realtime.telephony import (
    CALL_RECORDING_STATUS_PATH,
    DIAL_RESULT_PATH,
    MEDIA_PATH,
    RECORDING_STATUS_PATH,
    STREAM_ENDED_PATH,
    VOICEMAIL_PATH,
    twiml,
)
from realtime.telephony.signatures import public_url, public_ws_url

logger = logging.getLogger(__name__)

# Twilio connects the stream within a second or two of our TwiML; a token older than this is refused.
STREAM_TOKEN_TTL = dt.timedelta(minutes=2)
SEEN_TOKENS_KEPT = 32

MODE_OPEN = "open"
STREAMED_MODES = {MODE_OPEN, Organization.AfterHoursPolicy.TAKE_MESSAGE, Organization.AfterHoursPolicy.EMERGENCY_ONLY}

# Twilio CallStatus -> progress rank; a callback whose rank is not above the stored one changes nothing.
STATUS_RANK = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "failed": 3,
    "no-answer": 3,
    "canceled": 3,
}
DIAL_OUTCOMES = {
    "completed": "answered",
    "answered": "answered",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}
STREAM_OUTCOMES = {"goodbye", "transfer"}
LEG_TRANSFER, LEG_FALLBACK, LEG_ON_CALL = "transfer", "fallback", "on_call"
LEGS = {LEG_TRANSFER, LEG_FALLBACK, LEG_ON_CALL}


class StreamTokenRefused(Exception):
    """The call's stream already started (or the call ended): no new stream token."""


# --- helpers ----------------------------------------------------------------------------------------------------


def _twilio_meta(call: Call) -> dict:
    return call.metadata.setdefault("twilio", {})


def _already_seen(call: Call, idempotency_token: str, *natural_keys: str) -> bool:
    """True if this webhook delivery was processed before; otherwise remember it (caller saves metadata).

    `natural_keys` name the event itself (e.g. "dial:<DialCallSid>:<status>"): the idempotency token is not covered
    by Twilio's signature, so a replay with a new token is still recognised by them."""
    keys = [key[:128] for key in (idempotency_token, *natural_keys) if key]
    if not keys:
        return False
    meta = _twilio_meta(call)
    seen = meta.get("seen", [])
    if any(key in seen for key in keys):
        return True
    meta["seen"] = [*seen, *keys][-SEEN_TOKENS_KEPT:]
    return False


def _save(call: Call, fields: list[str]) -> None:
    """Save the changed fields of a locked call and record the change (inside the caller's transaction)."""
    call.save(update_fields=fields)
    audit_change(call, action=Action.CHANGE, fields=fields)


def _locked_by_sid(call_sid: str) -> Call | None:
    return Call.objects.select_for_update().filter(twilio_call_sid=call_sid, channel=Call.Channel.PHONE).first()


def dial_action_url(leg: str) -> str:
    return public_url(DIAL_RESULT_PATH, f"leg={leg}")


def answer_mode(organization: Organization, now: dt.datetime) -> str:
    """How the clinic answers right now: "open", or its after-hours policy."""
    return MODE_OPEN if organization.is_open(now) else organization.after_hours_policy


def _callback_evidence(call: Call, detail: str) -> str:
    return f"Callback number: {call.caller_phone or 'unknown'}. {detail}"


# --- incoming call ----------------------------------------------------------------------------------------------


def incoming_call_answer(
    *, call_sid: str, caller: str, called: str, call_status: str = "ringing", now: dt.datetime | None = None
) -> str:
    """TwiML for Twilio's incoming-call webhook; creates the phone call once per CallSid."""
    now = now or timezone.now()
    existing = Call.objects.select_related("organization").filter(twilio_call_sid=call_sid).first()
    if existing is not None:
        return _answer_again(existing, now)
    number = TwilioNumber.objects.select_related("organization").filter(number=called).first()
    if number is None:
        logger.info("incoming call to an unknown number")
        return twiml.say_and_hangup(twiml.NOT_IN_SERVICE)
    organization = number.organization
    mode = answer_mode(organization, now)
    meta = {"twilio": {"number": called, "mode": mode, "status": call_status if call_status in STATUS_RANK else ""}}
    try:
        with transaction.atomic():
            call, _caller_token = call_start(
                organization=organization,
                channel=Call.Channel.PHONE,
                caller_phone=caller[:32],
                twilio_call_sid=call_sid,
                metadata=meta,
                started_at=now,
            )
    except IntegrityError:  # a concurrent retry of the same webhook created it first
        existing = Call.objects.select_related("organization").get(twilio_call_sid=call_sid)
        return _answer_again(existing, now)
    return _answer_new(call, mode)


# --- fault tolerance: a process draining for a deploy takes no new streams (core/drain.py) -------------------------


def drained_call_answer(*, call_sid: str, caller: str, called: str, now: dt.datetime | None = None) -> str:
    """TwiML for an incoming call while this process drains: the call is recorded (callback number, CallSid) and
    gets the fallback (staff during hours, voicemail otherwise) instead of a media stream to a process on its way
    out. Twilio would play an error for a 503, so this never refuses."""
    now = now or timezone.now()
    call = Call.objects.select_related("organization").filter(twilio_call_sid=call_sid).first()
    if call is None:
        number = TwilioNumber.objects.select_related("organization").filter(number=called).first()
        if number is None:
            return twiml.say_and_hangup(twiml.NOT_IN_SERVICE)
        meta = {"twilio": {"number": called, "mode": answer_mode(number.organization, now), "drained": True}}
        try:
            with transaction.atomic():
                call, _token = call_start(
                    organization=number.organization,
                    channel=Call.Channel.PHONE,
                    caller_phone=caller[:32],
                    twilio_call_sid=call_sid,
                    metadata=meta,
                    started_at=now,
                )
        except IntegrityError:
            call = Call.objects.select_related("organization").get(twilio_call_sid=call_sid)
    logger.warning("incoming call answered with the fallback: this process is draining call=%s", call.pk)
    return fallback_twiml(call, now)


# --- end fault tolerance ---


def _answer_new(call: Call, mode: str) -> str:
    organization = call.organization
    if mode in STREAMED_MODES:
        return _stream_twiml(call, stream_token_issue(call))
    # forward_on_call (the database guarantees the phone for that policy), to a number the clinic may dial
    if organization.may_dial(organization.on_call_phone):
        return twiml.dial(
            message=organization.after_hours_message or twiml.FORWARD_DEFAULT,
            to_number=organization.on_call_phone,
            action_url=dial_action_url(LEG_ON_CALL),
        )
    return _voicemail_twiml()


def _answer_again(call: Call, now: dt.datetime) -> str:
    """A retried (or replayed) incoming-call webhook: never a second stream token. Twilio's signature has no
    timestamp, so a replay of the signed request is indistinguishable from a retry; handing it a token would let
    whoever captured the request open the call's stream (and would void the token Twilio holds). A genuine retry,
    whose first answer was lost, reaches staff or voicemail instead of the agent."""
    mode = call.metadata.get("twilio", {}).get("mode", MODE_OPEN)
    if mode not in STREAMED_MODES:
        return _answer_new(call, mode)  # the same forward; writes nothing
    return fallback_twiml(call, now)


def _stream_twiml(call: Call, token: str) -> str:
    recorded = call.organization.record_calls
    return twiml.stream(
        stream_url=public_ws_url(MEDIA_PATH),
        action_url=public_url(STREAM_ENDED_PATH),
        stream_token=token,
        call_id=str(call.pk),
        recording_status_url=public_url(CALL_RECORDING_STATUS_PATH) if recorded else None,
    )


def _voicemail_twiml() -> str:
    return twiml.voicemail(
        prompt=twiml.VOICEMAIL_PROMPT,
        action_url=public_url(VOICEMAIL_PATH),
        status_callback_url=public_url(RECORDING_STATUS_PATH),
    )


def fallback_twiml(call: Call, now: dt.datetime) -> str:
    """What a caller hears when the agent is gone: staff during hours, voicemail otherwise. Writes nothing."""
    organization = call.organization
    if organization.may_dial(organization.escalation_phone) and organization.is_open(now):
        return twiml.dial(
            message=twiml.FALLBACK_APOLOGY,
            to_number=organization.escalation_phone,
            action_url=dial_action_url(LEG_FALLBACK),
        )
    return _voicemail_twiml()


# --- stream tokens (used by the media bridge) -------------------------------------------------------------------


def stream_token_issue(call: Call) -> str:
    """Mint the call's one-time Media Streams token; only its hash is stored and any earlier token stops working."""
    token = "st_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        if locked.stream_started_at is not None or locked.is_ended:
            raise StreamTokenRefused
        locked.stream_token_hash = hash_call_token(token)
        _twilio_meta(locked)["stream_token_issued_at"] = timezone.now().isoformat()
        _save(locked, ["stream_token_hash", "metadata"])
    call.stream_token_hash, call.metadata = locked.stream_token_hash, locked.metadata
    return token


def stream_token_consume(call_id: object, token: object) -> Call | None:
    """Accept the one stream of a call: the token must match (constant time), be fresh and unused.

    Returns the call with stream_started_at set, or None for a missing, unknown, expired or reused token.
    """
    if not isinstance(token, str) or not token or not call_id:
        return None
    try:
        pk = uuid.UUID(str(call_id))
    except ValueError:
        return None
    presented = hash_call_token(token)
    now = timezone.now()
    with transaction.atomic():
        call = (
            Call.objects.select_for_update()
            .select_related("organization")
            .filter(pk=pk, channel=Call.Channel.PHONE)
            .first()
        )
        if call is None or call.is_ended or call.stream_started_at is not None or not call.stream_token_hash:
            return None
        if not hmac.compare_digest(call.stream_token_hash, presented):
            return None
        issued = call.metadata.get("twilio", {}).get("stream_token_issued_at")
        if issued and now - dt.datetime.fromisoformat(issued) > STREAM_TOKEN_TTL:
            return None
        call.stream_started_at = now
        call.stream_token_hash = ""  # one use: nothing left to match
        _save(call, ["stream_started_at", "stream_token_hash"])
    return call


def stream_end_mark(*, call: Call, outcome: str) -> Call:
    """The bridge calls this before it closes the stream on purpose (goodbye said, or after a successful transfer),
    so /twilio/stream-ended knows not to play the fallback."""
    if outcome not in STREAM_OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(STREAM_OUTCOMES)}")
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        _twilio_meta(locked)["stream_outcome"] = outcome
        _save(locked, ["metadata"])
    return locked


# --- status callbacks -------------------------------------------------------------------------------------------


def _end_reason(call: Call) -> str:
    if call.metadata.get("transfer", {}).get("outcome") == "answered":
        return Call.EndReason.TRANSFERRED
    outcome = call.metadata.get("twilio", {}).get("stream_outcome")
    if outcome == "transfer":
        return Call.EndReason.TRANSFERRED
    if outcome == "goodbye":
        return Call.EndReason.AGENT_ENDED
    return Call.EndReason.CALLER_HANGUP


def call_status_update(
    *,
    call_sid: str,
    call_status: str,
    duration: int | None = None,
    idempotency_token: str = "",
    now: dt.datetime | None = None,
) -> Call | None:
    """Apply a Twilio call status callback. Monotonic and idempotent; None for an unknown CallSid or status."""
    if call_status not in STATUS_RANK:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        call = _locked_by_sid(call_sid)
        if call is None or _already_seen(call, idempotency_token):
            return call
        meta = _twilio_meta(call)
        if STATUS_RANK[call_status] > STATUS_RANK.get(meta.get("status", ""), -1):
            meta["status"] = call_status
        _save(call, ["metadata"])
        if STATUS_RANK[call_status] < 3 or call.is_ended:
            return call
        if call_status == "completed":
            ended_at = now
            if duration is not None:
                ended_at = min(now, call.started_at + dt.timedelta(seconds=duration))
            # Twilio's duration is authoritative.
            return call_end(call=call, reason=_end_reason(call), ended_at=ended_at, duration_seconds=duration)
        if call_status == "failed":
            return call_end(call=call, reason=Call.EndReason.ERROR, ended_at=now)
        # busy / no-answer / canceled: the caller went away before the call was connected.
        call = call_end(call=call, reason=Call.EndReason.CALLER_HANGUP, status=Call.Status.ABANDONED, ended_at=now)
    logger.info("phone call abandoned twilio_status=%s call=%s", call_status, call.pk)
    return call


# --- after the stream: fallback, dial outcome, voicemail --------------------------------------------------------


def stream_ended_answer(*, call_sid: str, idempotency_token: str = "", now: dt.datetime | None = None) -> str:
    """TwiML for the <Connect action>: hang up after a normal goodbye/transfer, otherwise the fallback."""
    now = now or timezone.now()
    with transaction.atomic():
        call = _locked_by_sid(call_sid)
        if call is None:
            return twiml.say_and_hangup(twiml.UNAVAILABLE)
        meta = _twilio_meta(call)
        normal = meta.get("stream_outcome") in STREAM_OUTCOMES or call.end_reason in (
            Call.EndReason.AGENT_ENDED,
            Call.EndReason.TRANSFERRED,
        )
        if normal:
            # The agent already said its last line (goodbye, or "connecting you" before the REST redirect).
            return twiml.hangup()
        answer = fallback_twiml(call, now)
        kind = "dial" if "<Dial" in answer else "voicemail"
        if not _already_seen(call, idempotency_token):
            meta["fallback"] = kind
            _save(call, ["metadata"])
    logger.warning("media stream ended unexpectedly, fallback=%s call=%s", kind, call.pk)
    return answer


def dial_result_answer(
    *,
    call_sid: str,
    leg: str,
    dial_status: str,
    dial_call_sid: str = "",
    duration: int | None = None,
    idempotency_token: str = "",
) -> str:
    """Record how a <Dial> ended; when nobody answered, say so, and file an urgent escalation with the callback
    number so staff call back."""
    leg = leg if leg in LEGS else LEG_TRANSFER
    outcome = DIAL_OUTCOMES.get(dial_status, "failed")
    with transaction.atomic():
        call = _locked_by_sid(call_sid)
        if call is None:
            return twiml.say_and_hangup(twiml.UNAVAILABLE)
        recorded = call.metadata.get("transfer", {})
        # The stored outcome is the durable key (the seen list is short and other callbacks push keys out of it).
        same = (recorded.get("leg"), recorded.get("dial_call_sid"), recorded.get("outcome")) == (
            leg,
            dial_call_sid[:64],
            outcome,
        )
        replay = _already_seen(call, idempotency_token, f"dial:{leg}:{dial_call_sid[:64]}:{outcome}") or same
        if not replay:
            call.metadata["transfer"] = {
                "leg": leg,
                "outcome": outcome,
                "dial_call_sid": dial_call_sid[:64],
                "duration": duration,
            }
            _save(call, ["metadata"])
        if outcome == "answered":
            return twiml.hangup()  # the caller talked to a person; that conversation has ended
        if not replay:
            escalation_create(
                call=call,
                level=Escalation.Level.URGENT,
                # No "system" source exists; the transfer is part of the agent's workflow, not keyword triage.
                source=Escalation.Source.SYSTEM,
                reason="transfer_unanswered",
                evidence=_callback_evidence(call, f"Transfer ({leg}) ended: {outcome}."),
            )
    logger.info("dial ended leg=%s outcome=%s call=%s", leg, outcome, call.pk)
    if leg == LEG_ON_CALL:
        return _voicemail_twiml()
    return twiml.say_and_hangup(twiml.TRANSFER_UNANSWERED)


def voicemail_answer(*, call_sid: str, recording_sid: str = "", duration: int | None = None) -> str:
    """The <Record action>: thank the caller and hang up; remember which recording it was."""
    with transaction.atomic():
        call = _locked_by_sid(call_sid)
        if call is not None and recording_sid:
            voicemail = call.metadata.setdefault("voicemail", {})
            voicemail.update({"recording_sid": recording_sid[:64], "duration": duration})
            _save(call, ["metadata"])
    return twiml.say_and_hangup(twiml.VOICEMAIL_THANKS)


def call_recording_update(
    *,
    call_sid: str,
    recording_sid: str,
    recording_status: str,
    duration: int | None = None,
    channels: int | None = None,
    idempotency_token: str = "",
) -> Call | None:
    """The whole call's recording (<Start><Recording>) is ready (`completed`) or failed (`absent`): remember which
    it is, so the console can play it. Never a callback request: the caller was talking to the agent."""
    with transaction.atomic():
        call = _locked_by_sid(call_sid)
        if call is None:
            return None
        stored = call.metadata.get("recording", {})
        same = (stored.get("recording_sid"), stored.get("status")) == (recording_sid[:64], recording_status[:20])
        natural_key = f"call-recording:{recording_sid[:64]}:{recording_status[:20]}"
        if _already_seen(call, idempotency_token, natural_key) or same:
            return call
        call.metadata["recording"] = {
            "recording_sid": recording_sid[:64],
            "status": recording_status[:20],
            "duration": duration,
            "channels": channels,
        }
        _save(call, ["metadata"])
    logger.info("call recording status=%s call=%s", recording_status[:20], call.pk)
    return call


def recording_status_update(
    *,
    call_sid: str,
    recording_sid: str,
    recording_status: str,
    duration: int | None = None,
    idempotency_token: str = "",
) -> Call | None:
    """recordingStatusCallback: a finished voicemail becomes a callback request in the staff queue."""
    with transaction.atomic():
        call = _locked_by_sid(call_sid)
        if call is None:
            return None
        stored = call.metadata.get("voicemail", {})
        same = (stored.get("recording_sid"), stored.get("status")) == (recording_sid[:64], recording_status[:20])
        natural_key = f"recording:{recording_sid[:64]}:{recording_status[:20]}"
        if _already_seen(call, idempotency_token, natural_key) or same:
            return call
        voicemail = call.metadata.setdefault("voicemail", {})
        voicemail.update({"recording_sid": recording_sid[:64], "status": recording_status[:20], "duration": duration})
        _save(call, ["metadata"])
        if recording_status == "completed":
            escalation_create(
                call=call,
                level=Escalation.Level.HUMAN,
                source=Escalation.Source.SYSTEM,
                reason="voicemail_left",
                evidence=_callback_evidence(call, f"Voicemail recording {recording_sid[:64]}."),
            )
    return call
