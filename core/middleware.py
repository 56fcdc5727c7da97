"""Platform middleware: one base for middleware that runs natively under both WSGI and ASGI, the API body limit,
the text check on query and form input, no-store caching and the Server header.

Django awaits a middleware that is marked as a coroutine function. Marking it only when the next handler is async
keeps the sync path (WSGI, the test client) free of event loops and the async path (daphne) free of the thread hop
Django would otherwise add around a sync-only middleware. Subclasses write their logic once per mode, `handle` and
`ahandle`, usually as thin wrappers around shared helpers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.cache import add_never_cache_headers

from core.api.parsers import max_body_bytes
from core.errors import error_response
from core.jsonsafe import text_problem

SERVER_HEADER = "voiceagent"

# The next handler: it returns an HttpResponse under WSGI and an awaitable of one under ASGI. Which of the two is
# known only at run time (`async_mode`), so its result is Any to the type checker: `handle` uses it as a response,
# `ahandle` awaits it.
GetResponse = Callable[[HttpRequest], Any]


class SyncAsyncMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.async_mode:
            return self.ahandle(request)
        return self.handle(request)

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError


class ApiBodyLimitMiddleware(SyncAsyncMiddleware):
    """413 for API requests whose declared body is over the limit, before anything reads it. (Bodies without a
    Content-Length are bounded by the API's JSON parser.)"""

    def handle(self, request: HttpRequest) -> HttpResponse:
        return self._refuse(request) or self.get_response(request)

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        return self._refuse(request) or await self.get_response(request)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "invalid_content_length", "The Content-Length header is not a number.")
        limit = max_body_bytes()
        if length > limit:
            return error_response(
                413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes."
            )
        return None


class TextInputMiddleware(SyncAsyncMiddleware):
    """400 `invalid_text` for query-string and urlencoded-form input that a database cannot store (NUL; lone
    surrogates cannot come out of Django's UTF-8 decoding, but the check covers them too). JSON bodies are checked by
    the API's parser (core/api/parsers.py); this covers the console's search and filters and form posts such as
    Twilio's webhooks, where the value would otherwise reach a query (PostgreSQL refuses NUL: a 500)."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        return self._refuse(request) or self.get_response(request)

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        return self._refuse(request) or await self.get_response(request)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        sources = [request.GET]
        # Only urlencoded forms: the body is already read, and parsing it cannot fail (multipart parsing can, and
        # nothing here takes multipart input).
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            sources.append(request.POST)
        for source in sources:
            for key, values in source.lists():
                for text in (key, *values):
                    problem = text_problem(text)
                    if problem is not None:
                        if request.path.startswith("/api/"):
                            # Name the parameter (never its value): a key with NUL in it is named by position.
                            name = key if text_problem(key) is None else "(parameter name)"
                            return error_response(400, "invalid_text", problem, fields={name: [problem]})
                        return HttpResponseBadRequest(f"400 Bad Request: {problem}\n", content_type="text/plain")
        return None


# --- Caching of patient data ---------------------------------------------------------------------------------------


class NoStoreMiddleware(SyncAsyncMiddleware):
    """`Cache-Control: no-store` (and no-cache/must-revalidate/private) on every response but static files."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def handle(self, request: HttpRequest) -> HttpResponse:
        return self._mark(request, self.get_response(request))

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        return self._mark(request, await self.get_response(request))

    def _mark(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not request.path.startswith(self.static_prefix):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private, max-age=0
        return response


# --- Server header -------------------------------------------------------------------------------------------------


class ServerHeaderMiddleware(SyncAsyncMiddleware):
    """`Server: voiceagent` on every response Django makes: daphne adds `Server: daphne` only to responses that
    carry no Server header, and the server's name and make tell a visitor nothing they need."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        return self._mark(self.get_response(request))

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        return self._mark(await self.get_response(request))

    @staticmethod
    def _mark(response: HttpResponse) -> HttpResponse:
        response["Server"] = SERVER_HEADER
        return response
