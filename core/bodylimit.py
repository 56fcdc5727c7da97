"""ASGI: request bodies are bounded before they are read (docs/facts.md#body-limits).

Django's limits (DATA_UPLOAD_MAX_MEMORY_SIZE, the API's 413 in core/middleware.py) only act once Django has the
whole body: its ASGI handler reads every `http.request` chunk into a spooled file before any middleware runs. This
wrapper sits in front of it:
- a declared Content-Length over the limit is answered 413 at once, and the body is never read;
- a body without one (chunked) is counted chunk by chunk; past the limit the client gets its 413, the application
  is told the client went away (`http.disconnect`, so Django drops the request) and nothing more is read.
The limit is API_MAX_BODY_BYTES under /api/ and DATA_UPLOAD_MAX_MEMORY_SIZE elsewhere (console forms, Twilio
webhooks). The 413 says `Connection: close`, so the server closes the connection instead of reading on.

What this bounds depends on the server: uvicorn hands the application each chunk as it arrives (and pauses reading
while the application does not ask), so the bound holds; daphne receives the whole body first (Twisted spools it,
then daphne queues all of it as 8 KiB messages) and only then starts the application, so under daphne the answer is
right but the bytes were already taken: bound body size at the proxy in front of daphne.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from core.errors import error_body

type Scope = dict[str, Any]
type Message = dict[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]
type App = Callable[[Scope, Receive, Send], Awaitable[None]]


def body_limit_for(path: str) -> int:
    if path.startswith("/api/"):
        return int(getattr(settings, "API_MAX_BODY_BYTES", 262_144))
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header; -1 when it is not a plain number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


async def _refuse(send: Send, path: str, status: int, code: str, message: str) -> None:
    if path.startswith("/api/"):
        body = json.dumps(error_body(code, message)).encode()
        content_type = b"application/json"
    else:
        body = f"{status} {message}\n".encode()
        content_type = b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware for `http` scopes: see the module docstring."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = body_limit_for(path)
        declared = _declared_length(scope)
        if declared == -1:
            message = "The Content-Length header is not a number."
            return await _refuse(send, path, 400, "invalid_content_length", message)
        too_large = f"The request body is larger than the limit of {limit} bytes."
        if declared is not None and declared > limit:
            return await _refuse(send, path, 413, "payload_too_large", too_large)

        state = {"received": 0, "refused": False, "started": False}

        async def limited_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["refused"] = True
                    if not state["started"]:
                        state["started"] = True
                        await _refuse(send, path, 413, "payload_too_large", too_large)
                    return {"type": "http.disconnect"}  # Django abandons the request (RequestAborted)
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the client already has its 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
