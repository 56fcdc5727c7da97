"""ASGI: a caller address already over its per-address limit is answered 429 before Django runs.

The caller-side endpoints count every request of an address against `caller_ip` (core.api.throttling), and refuse
it once the window is full. Refused that way, each request still runs the whole middleware stack and DRF's dispatch
first: a few milliseconds of CPU each, on the same GIL as the staff requests of the process, so one address sending
refusals back to back slowed staff by about half. This gate reads the same counter (it does not count) and answers
the refusal itself, in the same error shape with Retry-After, for the routes whose views run that throttle: views
that set `caller_ip_throttled`, and those that set `caller_ip_throttled_with_org_key` when the request carries the
clinic's key (staff use them too, unthrottled). Below the limit, or when the counter cannot be read, the request goes
on to Django and its throttle as before.

The refusal is held for a second before it is sent (a bounded tarpit): a client looping on refusals then sends one
per second per connection instead of thousands, and the process spends nothing on the wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from types import SimpleNamespace
from typing import cast

from asgiref.sync import sync_to_async
from django.urls import Resolver404, resolve
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.api.throttling import exhausted, rate_for
from core.bodylimit import App, Receive, Scope, Send
from core.errors import error_body
from core.middleware import SERVER_HEADER
from core.observability import new_request_id

ORG_KEY_HEADER = b"x-org-key"

logger = logging.getLogger(__name__)

# A refused request is answered after HOLD_SECONDS; at most this many are held at once per address and in all (past
# that they are answered at once), so holding stays bounded in memory while each connection is slowed.
HOLD_SECONDS = 1.0
HOLD_PER_ADDRESS = 32
HOLD_TOTAL = 2048
_held: dict[str, int] = {}  # address -> refusals being held now (one event loop per process: no lock needed)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


def _gated(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    if scope.get("method") == "OPTIONS" or not scope.get("path", "").startswith("/api/"):
        return False
    try:
        view = resolve(scope["path"]).func
    except Resolver404:
        return False
    view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if getattr(view_class, "caller_ip_throttled", False):
        return True
    return bool(getattr(view_class, "caller_ip_throttled_with_org_key", False)) and ORG_KEY_HEADER in headers


def _ident(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """The address exactly as CallerIpThrottle names it (DRF's get_ident reads only REMOTE_ADDR and the
    X-Forwarded-For header, with NUM_PROXIES)."""
    meta = {"REMOTE_ADDR": (scope.get("client") or ("",))[0] or ""}
    forwarded = {}
    if b"x-forwarded-for" in headers:
        forwarded["x-forwarded-for"] = meta["HTTP_X_FORWARDED_FOR"] = headers[b"x-forwarded-for"].decode("latin-1")
    request = cast(Request, SimpleNamespace(META=meta, headers=forwarded))
    return (BaseThrottle().get_ident(request) or "unknown")[:100]


def _wait(ident: str) -> float | None:
    limit, period = rate_for("caller_ip")
    return exhausted(f"caller_ip:{ident}", limit, period)


class CallerFloodGate:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        ident, wait = "", None
        try:
            if _gated(scope, headers):
                ident = _ident(scope, headers)
                # The counter lives in the shared cache (Redis in production): read off the event loop.
                wait = await sync_to_async(_wait, thread_sensitive=False)(ident)
        except Exception:  # the gate only saves work: on any surprise the request goes on to the real throttle
            logger.exception("caller flood gate failed; passing the request on")
            wait = None
        if wait is None:
            return await self.app(scope, receive, send)
        if _held.get(ident, 0) < HOLD_PER_ADDRESS and sum(_held.values()) < HOLD_TOTAL:
            # Tarpit: a client that keeps sending after its refusal waits for the next one, at no cost to us (an
            # idle coroutine), so a loop of refusals cannot keep the process busy.
            _held[ident] = _held.get(ident, 0) + 1
            try:
                await asyncio.sleep(min(HOLD_SECONDS, wait))
            finally:
                _held[ident] -= 1
                if not _held[ident]:
                    del _held[ident]
        await _refuse(send, headers, math.ceil(max(1.0, wait - HOLD_SECONDS)))


async def _refuse(send: Send, headers: dict[bytes, bytes], retry_after: int) -> None:
    message = f"Too many requests; retry in {retry_after} seconds."
    body = json.dumps(error_body("throttled", message)).encode()
    response: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-request-id", new_request_id(None).encode()),
        (b"server", SERVER_HEADER.encode()),
    ]
    origin = headers.get(b"origin")
    if origin:
        # The refusal carries nothing of the clinic's, so any page may read it (a widget shows "retry shortly"
        # instead of a CORS failure); no credentials are allowed.
        response += [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
    await send({"type": "http.response.start", "status": 429, "headers": response})
    await send({"type": "http.response.body", "body": body})
