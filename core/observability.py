"""Request ids, call ids and the one log line per request.

The ids live in context variables so every log line of a request (or of a call's event pipeline) carries them
without passing them around. Log lines name ids, methods, paths and statuses only: never query strings, bodies,
headers, tokens or patient data.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.middleware import SyncAsyncMiddleware

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}")
request_logger = logging.getLogger("voiceagent.request")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.call_id = call_id_var.get()
        return True


@contextlib.contextmanager
def call_context(call_id: object) -> Iterator[None]:
    """Tag every log line inside the block with the call id."""
    token = call_id_var.set(str(call_id))
    try:
        yield
    finally:
        call_id_var.reset(token)


def new_request_id(incoming: str | None) -> str:
    """Our own id, unless TRUST_REQUEST_ID_HEADER says a proxy in front sets X-Request-ID (clients cannot): the id
    is written into audit rows, so a client must not pick it (e.g. another request's id). Even a trusted header is
    taken only when it looks like an id, so it cannot inject text into log lines."""
    if settings.TRUST_REQUEST_ID_HEADER and incoming and _REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class IdentifiedRequest(HttpRequest):
    """The type of a request once RequestIdMiddleware has run: it carries `request_id`."""

    request_id: str


class RequestIdMiddleware(SyncAsyncMiddleware):
    """Assigns `request.request_id`, echoes it as `X-Request-ID`, and logs one line per request."""

    def _start(self, request: HttpRequest) -> tuple[contextvars.Token[str], float]:
        identified = cast(IdentifiedRequest, request)
        identified.request_id = new_request_id(request.headers.get("X-Request-ID"))
        return request_id_var.set(identified.request_id), time.perf_counter()

    def _finish(
        self, request: HttpRequest, response: HttpResponse, token: contextvars.Token[str], started: float
    ) -> None:
        response["X-Request-ID"] = cast(IdentifiedRequest, request).request_id
        request_logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        request_id_var.reset(token)

    def handle(self, request: HttpRequest) -> HttpResponse:
        token, started = self._start(request)
        response = self.get_response(request)
        self._finish(request, response, token, started)
        return response

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        token, started = self._start(request)
        response = await self.get_response(request)
        self._finish(request, response, token, started)
        return response
