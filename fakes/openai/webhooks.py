"""OpenAI's project webhooks as the fake sends them: Standard Webhooks signatures and `realtime.call.incoming`.

Signed by hand here (the sender's side), so the product's verification, which goes through the official SDK's
`webhooks.unwrap`, is checked against an independent implementation of the scheme (docs/fakes.md#sip).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from .protocol import new_id


def signature(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the base64 part of a `whsec_` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    webhook_id = webhook_id or "wh_" + secrets.token_hex(12)
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(secret, webhook_id, stamp, body),
        "content-type": "application/json",
        "user-agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
    }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sip_headers(*, to: str, caller: str) -> list[dict[str, str]]:
    """The INVITE's headers as a Twilio Elastic SIP Trunk sends them to OpenAI: `To` keeps the dialled number,
    `From` the caller's (the exact header set and forms are a guess modelled on Twilio's SIP INVITEs)."""
    return [
        {"name": "From", "value": f'"{caller}" <sip:{caller}@pstn.twilio.com>;tag=' + secrets.token_hex(4)},
        {"name": "To", "value": f"<sip:{to}@sip.api.openai.com>"},
        {"name": "Call-ID", "value": secrets.token_hex(16) + "@0.0.0.0"},
        {"name": "X-Twilio-AccountSid", "value": "AC" + "0" * 32},
    ]


def incoming_call_event(call_id: str, *, to: str, caller: str, created_at: int | None = None) -> dict:
    """`realtime.call.incoming` (openai SDK RealtimeCallIncomingWebhookEvent)."""
    return {
        "object": "event",
        "id": new_id("evt"),
        "type": "realtime.call.incoming",
        "created_at": int(time.time()) if created_at is None else created_at,
        "data": {"call_id": call_id, "sip_headers": sip_headers(to=to, caller=caller)},
    }


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
