"""The webhook side of a fake Twilio: signs form POSTs the way Twilio does and sends them to our server.

Twilio signs the public URL it was told to request (e.g. https://clinic.example/twilio/voice), while a test server
listens on loopback; so the signed URL and the address the request is sent to are separate.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import TypedDict, Unpack
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import HMAC_SHA1, RequestValidator


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def new_idempotency_token() -> str:
    return f"{secrets.token_hex(16)}-{secrets.randbelow(10**9)}"


def sign(auth_token: str, url: str, params: Mapping[str, str] | None = None, *, algorithm: str = HMAC_SHA1) -> str:
    """X-Twilio-Signature for `url` and form `params` (empty for a WebSocket upgrade)."""
    return RequestValidator(auth_token).compute_signature(url, dict(params or {}), algorithm=algorithm)


def signed_headers(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | None = None,
    *,
    idempotency_token: str | None = None,
    shared_key_id: str | None = None,
) -> dict[str, str]:
    """Headers Twilio would send; with `shared_key_id`, signed HMAC-SHA256 with that SharedKey secret."""
    headers: dict[str, str] = {}
    if shared_key_id:
        headers["X-Twilio-Signature"] = sign(auth_token, url, params, algorithm="HMAC_SHA256")
        headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={shared_key_id},algorithm=HMAC_SHA256"
    else:
        headers["X-Twilio-Signature"] = sign(auth_token, url, params)
    if idempotency_token:
        headers["I-Twilio-Idempotency-Token"] = idempotency_token
    return headers


def voice_params(*, call_sid: str, caller: str, called: str, account_sid: str = "AC" + "0" * 32) -> dict[str, str]:
    """An incoming-call webhook body (the fields that matter, as Twilio names them)."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": caller,
        "Caller": caller,
        "To": called,
        "Called": called,
    }


class PostOptions(TypedDict, total=False):
    """The keyword options of `WebhookClient.post` that the per-webhook helpers pass through."""

    idempotency_token: str | None
    signature: str | None


class WebhookClient:
    """Posts signed webhooks to a running server. `public_base_url` is what Twilio believes it requests (our
    PUBLIC_BASE_URL); `server_url` is where the server really listens (e.g. http://127.0.0.1:8123)."""

    def __init__(self, *, server_url: str, public_base_url: str, auth_token: str, timeout: float = 10.0) -> None:
        self.server_url = server_url.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self.auth_token = auth_token
        self._client = httpx.Client(timeout=timeout)

    def __enter__(self) -> WebhookClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def post(
        self,
        path_and_query: str,
        params: Mapping[str, str],
        *,
        idempotency_token: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST like Twilio: form-encoded, signed over the public URL (or with the given `signature`)."""
        public = self.public_base_url + path_and_query
        headers = signed_headers(self.auth_token, public, params, idempotency_token=idempotency_token)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        parts = urlsplit(path_and_query)
        target = self.server_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return self._client.post(target, data=dict(params), headers=headers)

    def voice(self, *, call_sid: str, caller: str, called: str, **options: Unpack[PostOptions]) -> httpx.Response:
        return self.post("/twilio/voice", voice_params(call_sid=call_sid, caller=caller, called=called), **options)

    def status(
        self, *, call_sid: str, call_status: str, duration: int | None = None, **options: Unpack[PostOptions]
    ) -> httpx.Response:
        params = {"CallSid": call_sid, "CallStatus": call_status}
        if duration is not None:
            params["CallDuration"] = str(duration)
        return self.post("/twilio/status", params, **options)

    def stream_ended(self, *, call_sid: str, **options: Unpack[PostOptions]) -> httpx.Response:
        return self.post("/twilio/stream-ended", {"CallSid": call_sid, "CallStatus": "in-progress"}, **options)

    def dial_result(
        self, *, call_sid: str, dial_status: str, leg: str = "transfer", **options: Unpack[PostOptions]
    ) -> httpx.Response:
        params = {"CallSid": call_sid, "DialCallStatus": dial_status, "DialCallSid": new_call_sid()}
        return self.post(f"/twilio/dial-result?leg={leg}", params, **options)
