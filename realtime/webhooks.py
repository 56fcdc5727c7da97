"""`POST /openai/webhook`: OpenAI's project webhooks, verified per Standard Webhooks with the official SDK.

OpenAI signs each delivery with the project's `whsec_…` secret: `webhook-signature: v1,<base64 HMAC-SHA256 of
"{webhook-id}.{webhook-timestamp}.{body}">` (docs/facts.md#openai-webhooks). `client.webhooks.unwrap` checks it and
refuses a timestamp more than 5 minutes off, so a captured delivery cannot be replayed later; within those minutes a
replay carries the same `webhook-id`, which the receipt table (calls.WebhookReceipt) has seen. A refused delivery
answers 400 before anything is read or written. Only `realtime.call.incoming` does anything (realtime/sip.py);
other event types answer 200 and are ignored, as the sender expects of an endpoint subscribed to more than it uses.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from openai import InvalidWebhookSignatureError, OpenAI

from calls.audit import audit_request_actor
from realtime import sip

logger = logging.getLogger(__name__)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
TOLERANCE_SECONDS = 300  # the SDK's default: a timestamp further off than this is refused
MAX_WEBHOOK_ID_CHARS = 128
INCOMING_CALL = "realtime.call.incoming"


class WebhookRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def _client(secret: str) -> OpenAI:
    # Only webhooks.unwrap is used: it needs the secret, never the API key (nothing is sent anywhere).
    return OpenAI(api_key="unused-for-webhook-verification", webhook_secret=secret, max_retries=0)


def openai_webhook_unwrap(payload: bytes, headers: Mapping[str, str]) -> tuple[Any, str]:
    """The verified event and its `webhook-id`; raises WebhookRefused (missing or wrong signature, a timestamp
    more than 5 minutes off, a body that is not an event object)."""
    secret = settings.OPENAI_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused("webhook_not_configured", "OPENAI_WEBHOOK_SECRET is not set: no webhook is accepted.")
    present = {name: headers.get(name) for name in SIGNATURE_HEADERS}
    if not all(present.values()):
        raise WebhookRefused("missing_signature", "The webhook-id, webhook-timestamp and webhook-signature are needed.")
    webhook_id = str(present["webhook-id"])
    if len(webhook_id) > MAX_WEBHOOK_ID_CHARS:
        raise WebhookRefused("invalid_signature", "The webhook signature does not match.")
    try:
        event = _client(secret).webhooks.unwrap(payload, dict(headers), secret=secret)
    except InvalidWebhookSignatureError as exc:
        if "too old" in str(exc) or "too new" in str(exc):
            raise WebhookRefused("stale_timestamp", "The webhook timestamp is more than 5 minutes off.") from None
        raise WebhookRefused("invalid_signature", "The webhook signature does not match.") from None
    except (ValueError, TypeError):  # a body that is not UTF-8 JSON (after a valid signature), a malformed secret
        raise WebhookRefused("invalid_payload", "The webhook body is not a JSON event.") from None
    if not isinstance(getattr(event, "type", None), str):
        raise WebhookRefused("invalid_payload", "The webhook body is not a JSON event.")
    return event, webhook_id


def _answer(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@csrf_exempt
@require_POST
async def openai_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event, webhook_id = openai_webhook_unwrap(request.body, request.headers)
    except WebhookRefused as exc:
        logger.warning("openai webhook refused code=%s", exc.code)
        return _answer(400, exc.code, exc.message)
    audit_request_actor(request, service="openai", via="webhook")
    if event.type != INCOMING_CALL:
        return _answer(200, "ignored", "This event type is not used.")
    outcome = await sip.incoming_call_webhook(event, webhook_id=webhook_id)
    return _answer(200, outcome, "Processed.")
