"""Answers when a dependency is down: 503 with Retry-After, never a 500 and never a hung request.

- `database_unavailable(exc)`: is this a lost/refused database connection (a restart, a failover, an exhausted pool)
  rather than a bug? Django wraps psycopg's OperationalError/InterfaceError (psycopg_pool's PoolTimeout is an
  OperationalError); raw psycopg errors are checked too.
- `DatabaseUnavailableMiddleware`: a view that hits such an error answers 503 `database_unavailable` with
  Retry-After, in the API's error shape under /api/ and as a plain page elsewhere (DRF views get the same from
  core.errors.api_exception_handler). `server_error` (handler500) does the same for errors raised in middleware.
- `RequestDeadline`: an ASGI wrapper that answers 503 `deadline_exceeded` when a request has not started its
  response within REQUEST_DEADLINE_SECONDS. A frozen PostgreSQL (SIGSTOP, a stuck network) blocks a query forever:
  no client-side timeout covers it, and daphne's --http-timeout only checks every 2 s (uvicorn has none). The view's
  thread cannot be cancelled and finishes when the database wakes up; its late answer is dropped (clients retry with
  idempotent keys: segment item ids, call/end). It also counts in-flight requests for drain (core.drain).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core import drain
from core.errors import (
    DATABASE_MESSAGE,
    RETRY_AFTER_SECONDS,
    ServiceUnavailable,
    database_unavailable,
    error_body,
    error_response,
)

logger = logging.getLogger(__name__)


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def unavailable_response(path: str, code: str, message: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> HttpResponse:
    """503 with Retry-After: the error shape under /api/, a short plain page elsewhere (Twilio, console, probes)."""
    if _is_api(path):
        response: HttpResponse = JsonResponse(error_body(code, message), status=503)
    else:
        response = HttpResponse(f"503 Service Unavailable: {message}\n", status=503, content_type="text/plain")
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Maps a lost database connection raised by a view to 503 + Retry-After (listed last in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:  # sync only
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if database_unavailable(exception):
            logger.warning("database unavailable: %s", type(exception).__name__)
            return unavailable_response(request.path, "database_unavailable", DATABASE_MESSAGE)
        if isinstance(exception, ServiceUnavailable):
            logger.warning("service unavailable: %s", type(exception).__name__)
            return unavailable_response(
                request.path, exception.code, exception.message, retry_after=exception.retry_after
            )
        return None


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """handler500: a database outage raised outside a view (sessions, auth) is a 503, anything else a plain 500
    (under /api/ in the error shape). Never a traceback or an upstream body."""
    exc = sys.exc_info()[1]
    if database_unavailable(exc):
        return unavailable_response(request.path, "database_unavailable", DATABASE_MESSAGE)
    if _is_api(request.path):
        return error_response(500, "server_error", "Something went wrong on our side; the error was logged.")
    return HttpResponse("500 Internal Server Error\n", status=500, content_type="text/plain")


# --- ASGI: a deadline on every HTTP request ----------------------------------------------------------------------


_background: set[asyncio.Task] = set()  # requests answered by the deadline, still finishing in the background


def _deadline_body(path: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    response = unavailable_response(path, "deadline_exceeded", "The server could not answer in time; retry shortly.")
    headers = [(b"Content-Type", response["Content-Type"].encode())]
    headers += [(b"Retry-After", response["Retry-After"].encode()), (b"Cache-Control", b"no-store")]
    return headers, response.content


class RequestDeadline:
    """ASGI middleware: HTTP requests start their response within `seconds` or get a 503 (see module docstring)."""

    def __init__(self, app: Any, seconds: float | None = None) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seconds = self.seconds if self.seconds is not None else settings.REQUEST_DEADLINE_SECONDS
        state = {"started": False, "abandoned": False}

        async def guarded_send(message: dict) -> None:
            if state["abandoned"]:
                return  # the client already has its 503
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        drain.http_started()
        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=seconds)
            if task in done or state["started"]:
                await task  # finished, or streaming its answer already: let it complete
                return
            state["abandoned"] = True
            _background.add(task)
            task.add_done_callback(_background.discard)
            task.add_done_callback(_log_late_failure)
            logger.warning("request deadline exceeded after %.1fs path=%s", seconds, scope.get("path", "")[:40])
            headers, body = _deadline_body(scope.get("path", ""))
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            drain.http_finished()


def _log_late_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.info("a request answered by the deadline later failed: %s", type(task.exception()).__name__)
