"""Request ids, call ids and the one log line per request.

The ids live in context variables so every log line of a request (or of a call's event pipeline) carries them
without passing them around. Log lines name ids, methods, paths and statuses only: never query strings, bodies,
headers, tokens or patient data.

Two guarantees hold for every record, whoever logged it, in `ContextFilter` (installed on the log handler):
- one record is one line: control characters (newlines included) and lone surrogates in the message, its
  arguments and exception texts are written as escapes, so input that reaches a log line (a path, a forwarded
  event's field) cannot forge another line;
- a database error is logged as its class and SQLSTATE only: its text carries row data ("DETAIL: Failing row
  contains (...)", "LINE 1: ...'Jane Roe', '+1415...'") and patient data never reaches a log.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import numbers
import re
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, cast

from django.conf import settings
from django.db import Error as DjangoDatabaseError
from django.http import HttpRequest, HttpResponse

from core.middleware import SyncAsyncMiddleware

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}")
request_logger = logging.getLogger("voiceagent.request")


# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and lone surrogates (unencodable).
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_log_text(text: str) -> str:
    """`text` on one line: control characters and lone surrogates as backslash escapes."""
    return _UNSAFE_CHARS.sub(_escape_char, text)


def _is_database_error(exc: BaseException) -> bool:
    if isinstance(exc, DjangoDatabaseError):
        return True
    module = type(exc).__module__
    return module.startswith(("psycopg", "sqlite3")) and isinstance(exc, Exception)


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)  # psycopg; Django's wrapper keeps it on __cause__
        if isinstance(state, str) and state:
            return state
        current = current.__cause__
    return None


def describe_exception(exc: BaseException) -> str:
    """`Class: message` for a log line; for a database error `Class (SQLSTATE xxxxx)`, without its text."""
    name = type(exc).__qualname__
    if _is_database_error(exc):
        state = _sqlstate(exc)
        return f"{name} (SQLSTATE {state})" if state else f"{name} (database error text withheld)"
    text = str(exc)
    return f"{name}: {escape_log_text(text)}" if text else name


def format_exception_safely(exc: BaseException) -> str:
    """A traceback as `traceback.format_exception` writes it, with every exception's message through
    `describe_exception` (the frames are code locations: file, line, function and source line)."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    parts: list[str] = []
    for item, link_to_next in reversed(chain):
        if item.__traceback__ is not None:
            parts.append("Traceback (most recent call last):")
            for entry in traceback.format_tb(item.__traceback__):
                parts.extend(escape_log_text(line) for line in entry.rstrip("\n").split("\n"))
        parts.append(describe_exception(item))
        if link_to_next is not None:
            parts.extend(["", link_to_next, ""])
    return "\n".join(parts)


def _safe_arg(value: Any) -> Any:
    if isinstance(value, BaseException):
        return describe_exception(value)
    if isinstance(value, numbers.Number):
        return value  # keeps %d and %.1f working
    return escape_log_text(str(value))


class ContextFilter(logging.Filter):
    """Adds the request and call ids to every record and makes it safe to write (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.call_id = call_id_var.get()
        template, args = str(record.msg), record.args
        if args:
            # Formatted here with escaped arguments (and database errors described), so no value can carry a line
            # break or row data into the line.
            safe: Any = (
                {key: _safe_arg(value) for key, value in args.items()}
                if isinstance(args, Mapping)
                else tuple(_safe_arg(value) for value in args)
            )
            try:
                message = template % safe
            except (TypeError, ValueError, KeyError):
                message = template + " (arguments withheld: they do not fit the message)"
        else:
            message = template
        record.msg, record.args = escape_log_text(message), None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = format_exception_safely(record.exc_info[1])
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
