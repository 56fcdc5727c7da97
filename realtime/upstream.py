"""Talking to OpenAI's Realtime REST endpoints (client secrets, hang-up) with bounded time and clear errors.

httpx rather than the `openai` SDK here: the SDK retries time-outs too (a hung upstream would cost a caller two
full time-outs) and its exceptions carry upstream bodies; we want one bounded attempt plus one retry only on a
refused connection, and errors that name no secret. The SDK is still the reference client our fake upstream is
checked against (realtime/tests/test_fake_openai*).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from realtime.breaker import BreakerOpen, CircuitBreaker

logger = logging.getLogger(__name__)

CLIENT_SECRET_TTL_SECONDS = 120  # the browser uses it within seconds; a short TTL limits a leaked secret's value


class UpstreamError(Exception):
    """An upstream failure mapped for our API: `status` (502/504), `code` and a message safe to show."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after: float | None = None  # set when the breaker refused (503)
        self.upstream_overloaded = False  # a 429: counts towards the breaker


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: int
    session: dict


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.OPENAI_API_KEY or 'sk-local-fake'}"}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Building a context loads the CA bundle (tens of ms); once per process, not once per request.
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _timeout() -> httpx.Timeout:
    total = settings.OPENAI_TIMEOUT_SECONDS
    return httpx.Timeout(total, connect=min(2.0, total))


def _upstream_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"OpenAI answered HTTP {response.status_code}."
    # Never relay anything that looks like a key back to a caller.
    return str(message)[:300].replace(settings.OPENAI_API_KEY or "\0", "[redacted]")


async def _post(path: str, *, json: dict | None = None) -> httpx.Response:
    url = f"{settings.OPENAI_BASE_URL}{path}"
    async with httpx.AsyncClient(timeout=_timeout(), follow_redirects=False, verify=_tls_context()) as client:
        for attempt in (1, 2):
            try:
                return await client.post(url, json=json, headers=_headers())
            except httpx.ConnectError:
                # Nothing reached the upstream, so one retry cannot create a second secret.
                if attempt == 2:
                    raise UpstreamError(502, "upstream_unavailable", "OpenAI could not be reached.") from None
            except httpx.TimeoutException:
                raise UpstreamError(504, "upstream_timeout", "OpenAI did not answer in time.") from None
            except httpx.HTTPError:
                raise UpstreamError(502, "upstream_unavailable", "The connection to OpenAI failed.") from None
    raise AssertionError("unreachable")


# --- fault tolerance: circuit breaker and a total deadline for minting (realtime/breaker.py) ---------------------


@functools.cache
def _breaker_for(base_url: str, threshold: int, reset_after: float) -> CircuitBreaker:
    return CircuitBreaker(threshold=threshold, reset_after=reset_after)


def mint_breaker() -> CircuitBreaker:
    """The process-wide breaker for minting: one per upstream and configuration (settings overrides apply)."""
    return _breaker_for(
        settings.OPENAI_BASE_URL, settings.OPENAI_BREAKER_THRESHOLD, settings.OPENAI_BREAKER_RESET_SECONDS
    )


async def client_secret_create(session: dict, *, ttl_seconds: int = CLIENT_SECRET_TTL_SECONDS) -> ClientSecret:
    """POST /realtime/client_secrets with a GA session; maps failures to UpstreamError.

    Bounded as a whole (a body trickling in under the per-read time-out is cut at OPENAI_TIMEOUT_SECONDS), and
    behind a circuit breaker: after repeated upstream failures it answers 503 at once until a probe succeeds."""
    breaker = mint_breaker()
    try:
        breaker.before_call()
    except BreakerOpen as exc:
        error = UpstreamError(503, "upstream_unavailable", "OpenAI is unavailable; retry shortly.")
        error.retry_after = exc.retry_after
        raise error from None
    try:
        async with asyncio.timeout(settings.OPENAI_TIMEOUT_SECONDS):
            secret = await _client_secret_create(session, ttl_seconds)
    except TimeoutError:
        breaker.record_failure()
        raise UpstreamError(504, "upstream_timeout", "OpenAI did not answer in time.") from None
    except UpstreamError as exc:
        if exc.code == "upstream_rejected" and not exc.upstream_overloaded:
            breaker.record_success()  # it answered: the request was at fault, not the upstream's health
        else:
            breaker.record_failure()
        raise
    breaker.record_success()
    return secret


async def _client_secret_create(session: dict, ttl_seconds: int) -> ClientSecret:
    body = {"expires_after": {"anchor": "created_at", "seconds": ttl_seconds}, "session": session}
    response = await _post("/realtime/client_secrets", json=body)
    if 400 <= response.status_code < 500:
        logger.warning("client secret rejected upstream status=%s", response.status_code)
        error = UpstreamError(502, "upstream_rejected", _upstream_message(response))
        error.upstream_overloaded = response.status_code == 429
        raise error
    if response.status_code >= 500 or response.status_code not in (200, 201):
        logger.warning("client secret failed upstream status=%s", response.status_code)
        raise UpstreamError(502, "upstream_unavailable", f"OpenAI answered HTTP {response.status_code}.")
    try:
        data = response.json()
        return ClientSecret(value=str(data["value"]), expires_at=int(data["expires_at"]), session=dict(data["session"]))
    except (ValueError, KeyError, TypeError):
        raise UpstreamError(502, "upstream_unavailable", "OpenAI answered with a malformed body.") from None


async def call_hangup(openai_call_id: str) -> None:
    """End a WebRTC call upstream (best effort: the call is already ended on our side)."""
    try:
        response = await _post(f"/realtime/calls/{openai_call_id}/hangup")
        if response.status_code >= 400:
            logger.warning("hangup answered status=%s", response.status_code)
    except UpstreamError as exc:
        logger.warning("hangup failed code=%s", exc.code)


# --- SIP call control (POST /realtime/calls/{call_id}/accept|reject|refer; openai SDK realtime.calls) ----------


async def _call_control(openai_call_id: str, action: str, body: dict | None) -> None:
    """One call-control request; UpstreamError unless OpenAI answered 2xx. Bounded as a whole."""
    try:
        async with asyncio.timeout(settings.OPENAI_TIMEOUT_SECONDS):
            response = await _post(f"/realtime/calls/{openai_call_id}/{action}", json=body)
    except TimeoutError:
        raise UpstreamError(504, "upstream_timeout", "OpenAI did not answer in time.") from None
    if response.status_code >= 300:
        logger.warning("call %s answered status=%s", action, response.status_code)
        code = "upstream_rejected" if response.status_code < 500 else "upstream_unavailable"
        raise UpstreamError(502, code, _upstream_message(response))


async def call_accept(openai_call_id: str, session: dict) -> None:
    """Answer a ringing SIP call with the clinic's session (the body is the GA session itself, as the SDK's
    `realtime.calls.accept` sends it)."""
    await _call_control(openai_call_id, "accept", session)


async def call_reject(openai_call_id: str, status_code: int) -> None:
    """Decline a ringing SIP call with a SIP status (486 busy, 603 decline)."""
    await _call_control(openai_call_id, "reject", {"status_code": status_code})


async def call_refer(openai_call_id: str, target_uri: str) -> None:
    """Transfer a live SIP call (SIP REFER) to `tel:+1…` or `sip:…`."""
    await _call_control(openai_call_id, "refer", {"target_uri": target_uri})


def realtime_ws_url(*, model: str | None = None, call_id: str | None = None) -> str:
    """`{OPENAI_BASE_URL as ws}/realtime?model=…` or `?call_id=…` (the sideband)."""
    parts = urlsplit(settings.OPENAI_BASE_URL)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = f"call_id={call_id}" if call_id else f"model={model or settings.REALTIME_MODEL}"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", query, ""))


def ws_headers() -> dict[str, str]:
    return _headers()
