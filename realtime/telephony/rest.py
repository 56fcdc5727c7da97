"""The Twilio REST call the agent needs on a live call: redirect it to a human (<Dial>).

httpx rather than twilio.rest.Client: the Client builds its URLs from fixed domains (api.twilio.com plus region/edge),
so honouring TWILIO_API_BASE_URL (a loopback fake in tests) would mean patching its internals; httpx takes the
base URL as is, has one short explicit timeout, and has an async twin for the media bridge's event loop.
The Auth Token goes only into the Basic auth header; it is never logged or put into an exception message.
"""

from __future__ import annotations

import logging
import re

import httpx
from django.conf import settings
from twilio.twiml.voice_response import VoiceResponse

from calls.models import Call
from realtime.telephony import twiml
from realtime.telephony.services import LEG_TRANSFER, dial_action_url

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=2.0)
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


class TwilioRestError(Exception):
    """A Twilio REST request failed. `status` is the HTTP status (None when Twilio was not reached), `code` Twilio's
    error code or "network", "not_configured", "no_call_sid"."""

    def __init__(self, message: str, *, status: int | None = None, code: str | int = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def transfer_twiml(*, to_number: str, caller_id: str, say: str = twiml.CONNECTING) -> str:
    if not E164_RE.match(to_number) or not E164_RE.match(caller_id):
        raise ValueError("to_number and caller_id must be E.164 numbers")
    response = VoiceResponse()
    response.say(say)
    response.dial(
        action=dial_action_url(LEG_TRANSFER),
        timeout=twiml.DIAL_TIMEOUT_SECONDS,
        answer_on_bridge=True,
        caller_id=caller_id,
    ).number(to_number)
    return str(response)


def _request(call: Call, form: dict[str, str]) -> tuple[str, dict[str, str], tuple[str, str]]:
    sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
    if not sid or not token:
        raise TwilioRestError(
            "Twilio is not configured (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN).", code="not_configured"
        )
    if not call.twilio_call_sid:
        raise TwilioRestError("This call has no Twilio CallSid.", code="no_call_sid")
    url = f"{settings.TWILIO_API_BASE_URL}/2010-04-01/Accounts/{sid}/Calls/{call.twilio_call_sid}.json"
    return url, form, (sid, token)


def _check(call: Call, response: httpx.Response) -> dict:
    if response.is_success:
        try:
            return response.json()
        except ValueError:
            return {}
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    logger.warning("twilio call update failed status=%s code=%s call=%s", response.status_code, code, call.pk)
    raise TwilioRestError(
        f"Twilio refused the call update ({response.status_code}): {str(message)[:200]}",
        status=response.status_code,
        code=code,
    )


async def _aupdate(call: Call, form: dict[str, str]) -> dict:
    url, data, auth = _request(call, form)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(url, data=data, auth=auth)
    except httpx.HTTPError as exc:
        logger.warning("twilio call update unreachable error=%s call=%s", type(exc).__name__, call.pk)
        raise TwilioRestError(f"Twilio could not be reached ({type(exc).__name__}).", code="network") from None
    return _check(call, response)


async def atransfer_call(call: Call, to_number: str, *, caller_id: str, say: str = twiml.CONNECTING) -> dict:
    """Redirect the live call: say `say`, then ring `to_number` (outcome reported to /twilio/dial-result).

    Twilio abandons the <Connect><Stream> (the bridge gets `stop`). Returns Twilio's call resource; raises
    TwilioRestError. The caller marks the stream outcome ("transfer") only after this succeeded.
    """
    return await _aupdate(call, {"Twiml": transfer_twiml(to_number=to_number, caller_id=caller_id, say=say)})
