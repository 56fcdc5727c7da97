"""Phone calls OpenAI answers itself over SIP: no audio through our servers, the same sideband as the browser.

A Twilio Elastic SIP Trunk sends the clinic's number to `sip:<project id>@sip.api.openai.com;transport=tls`; OpenAI
posts a signed `realtime.call.incoming` to `POST /openai/webhook` (realtime/webhooks.py) and holds the call ringing
until we answer (OpenAI's example: openai/openai-agents-python examples/realtime/twilio_sip/server.py):

- the clinic is found by the number in the SIP `To` header, through the same number table as Twilio numbers
  (organizations.TwilioNumber); an unknown number is rejected with 603 (Decline), and while this process drains
  for a deploy every new call is rejected with 486 (Busy Here), so the trunk's next origination URI takes it
  (README, Phone over SIP). A rejected call leaves no call row;
- otherwise the call row is created once per OpenAI call id (channel phone, caller number from `From`), in the
  transaction that records the delivery's `webhook-id`, and the call is accepted with the clinic's session (the
  builder minting uses, without an audio format: the SIP leg negotiates its codec);
- the sideband then attaches (realtime/sideband.py) and greets first; from there the call event pipeline runs the
  call exactly as for the browser: transcripts, tools, triage, steering, escalations, board, audit;
- after hours the clinic's policy applies: take a message or emergency instructions (the agent, with the
  after-hours prompt), or forward to on-call (the agent says the after-hours line, then `refer` to on-call);
- a failed accept or sideband ends the call at once with reason `error` and says which in metadata["sip"].

metadata["sip"] = {"number": the clinic's dialled number, "mode": open|take_message|emergency_only|forward_on_call,
                   "failure": accept_failed|sideband_failed, "transfer": {"leg", "outcome": referred|failed}}
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.audit import audit_actor
from calls.models import Call
from calls.services import call_end, call_metadata_merge, call_start, webhook_receipt_record
from core.drain import refuse_new_calls
from core.observability import call_context
from organizations.models import Organization, TwilioNumber
from realtime import sideband
from realtime.bridge import default_greeting, greeting_event
from realtime.session import build_session
from realtime.telephony import twiml
from realtime.telephony.services import answer_mode
from realtime.upstream import UpstreamError, call_accept, call_reject

logger = logging.getLogger(__name__)

INCOMING_CALL = "realtime.call.incoming"
SIP_DECLINE = 603  # nobody answers this number here
SIP_BUSY = 486  # this process takes no new calls now (deploy drain): the trunk may try its next origination URI
OPENAI_CALL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_VISUAL_SEPARATORS = re.compile(r"[\s().-]")
LEG_ESCALATION, LEG_ON_CALL = "escalation", "on_call"


# --- SIP headers (pure) -----------------------------------------------------------------------------------------


def sip_header(headers: list[tuple[str, str]], name: str) -> str:
    """The first value of header `name` (case-insensitive; SIP's compact forms t / f for To / From)."""
    compact = {"to": "t", "from": "f"}.get(name.lower())
    for key, value in headers:
        if key.lower() == name.lower() or (compact and key.lower() == compact):
            return value
    return ""


def sip_uri_number(value: str) -> str:
    """The E.164 number in a To/From header value (`"Clinic" <sip:+16175550110@host>;tag=x`, `<tel:+1-617-…>`),
    or "" when it names no phone number (a SIP user name, a malformed value)."""
    value = value.strip()
    if "<" in value and ">" in value.split("<", 1)[1]:
        value = value.split("<", 1)[1].split(">", 1)[0]
    else:
        value = value.split(";", 1)[0]  # header parameters (tag) follow a bare URI
    scheme, _, rest = value.partition(":")
    scheme = scheme.strip().lower()
    if scheme in ("sip", "sips"):
        user = rest.split("@", 1)[0] if "@" in rest else ""
    elif scheme == "tel":
        user = rest
    else:
        return ""
    number = _VISUAL_SEPARATORS.sub("", user.split(";", 1)[0])
    if number and not number.startswith("+"):
        number = "+" + number
    return number if _E164.match(number) else ""


def header_pairs(raw: object) -> list[tuple[str, str]]:
    """`data.sip_headers` as (name, value) pairs: the SDK gives models (or dicts, for fields it did not type)."""
    pairs: list[tuple[str, str]] = []
    for entry in raw if isinstance(raw, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else getattr(entry, "name", None)
        value = entry.get("value") if isinstance(entry, dict) else getattr(entry, "value", None)
        if isinstance(name, str) and isinstance(value, str):
            pairs.append((name[:64], value[:1024]))
    return pairs[:100]


# --- the incoming call (database step) --------------------------------------------------------------------------


@dataclass
class IncomingPlan:
    outcome: str  # accept | reject | duplicate
    status_code: int = 0  # the SIP status of a rejection
    reason: str = ""  # why it was rejected (for the log line)
    call: Call | None = None
    session: dict | None = None
    greeting: dict | None = None
    forward_to: str = ""  # after hours, forward_on_call: refer to this number once the greeting played


def incoming_call_plan(
    *, webhook_id: str, openai_call_id: str, headers: list[tuple[str, str]], now: dt.datetime | None = None
) -> IncomingPlan:
    """Record the delivery and decide: accept (the call row created), reject (no row), or a duplicate (nothing)."""
    now = now or timezone.now()
    to_number = sip_uri_number(sip_header(headers, "to"))
    caller = sip_uri_number(sip_header(headers, "from"))
    try:
        with transaction.atomic():
            if not webhook_receipt_record(source="openai", delivery_id=webhook_id, event_type=INCOMING_CALL):
                return IncomingPlan("duplicate")
            if Call.objects.filter(openai_call_id=openai_call_id).exists():  # redelivered under another id
                return IncomingPlan("duplicate")
            number = (
                TwilioNumber.objects.select_related("organization").filter(number=to_number).first()
                if to_number
                else None
            )
            if number is None:
                return IncomingPlan("reject", status_code=SIP_DECLINE, reason="unknown_number")
            if refuse_new_calls():
                return IncomingPlan("reject", status_code=SIP_BUSY, reason="draining")
            organization = number.organization
            mode = answer_mode(organization, now)
            call, _token = call_start(
                organization=organization,
                channel=Call.Channel.PHONE,
                caller_phone=caller,
                openai_call_id=openai_call_id,
                metadata={"sip": {"number": to_number, "mode": mode}},
                started_at=now,
            )
    except IntegrityError:  # a concurrent delivery of the same call created it first
        return IncomingPlan("duplicate")
    forward_to = ""
    if mode == Organization.AfterHoursPolicy.FORWARD_ON_CALL and organization.may_dial(organization.on_call_phone):
        forward_to = organization.on_call_phone
        line = organization.after_hours_message.strip() or twiml.FORWARD_DEFAULT
    else:
        line = organization.agent_greeting.strip() or default_greeting(call)
    return IncomingPlan(
        "accept",
        call=call,
        session=build_session(organization, now=now, sip=True),
        greeting=greeting_event(line, organization),
        forward_to=forward_to,
    )


def sip_call_fail(*, call: Call, failure: str) -> Call:
    """The call could not be run (accept or sideband failed): terminal at once, with the reason."""
    call = call_metadata_merge(call=call, key="sip", fields={"failure": failure})
    return call_end(call=call, reason=Call.EndReason.ERROR)


# --- the webhook's work (async: network I/O outside any transaction) --------------------------------------------


async def incoming_call_webhook(event: Any, *, webhook_id: str) -> str:
    """Handle a verified `realtime.call.incoming`; returns what was done (accepted, rejected, duplicate, failed,
    ignored)."""
    data = getattr(event, "data", None)
    openai_call_id = getattr(data, "call_id", None)
    if not isinstance(openai_call_id, str) or not OPENAI_CALL_ID_RE.match(openai_call_id):
        logger.warning("sip call ignored: no usable call id")
        return "ignored"
    headers = header_pairs(getattr(data, "sip_headers", None))
    with audit_actor("openai"):
        plan = await sync_to_async(incoming_call_plan)(
            webhook_id=webhook_id, openai_call_id=openai_call_id, headers=headers
        )
    if plan.outcome == "duplicate":
        logger.info("sip call webhook redelivered: nothing to do")
        return "duplicate"
    if plan.outcome == "reject":
        logger.info("sip call rejected status=%s reason=%s", plan.status_code, plan.reason)
        try:
            await call_reject(openai_call_id, plan.status_code)
        except UpstreamError as exc:
            logger.warning("sip reject failed code=%s", exc.code)  # the call rings out upstream
        return "rejected"
    assert plan.call is not None and plan.session is not None and plan.greeting is not None
    call = plan.call
    with call_context(call.pk):
        try:
            await call_accept(openai_call_id, plan.session)
        except UpstreamError as exc:
            logger.warning("sip accept failed code=%s", exc.code)
            with audit_actor("openai"):
                await sync_to_async(sip_call_fail)(call=call, failure="accept_failed")
            return "failed"
        logger.info("sip call accepted")
        sideband.attach(
            str(call.pk),
            openai_call_id,
            sip=sideband.SipCall(openai_call_id=openai_call_id, greeting=plan.greeting, forward_to=plan.forward_to),
        )
    return "accepted"
