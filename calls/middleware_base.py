"""One base for middleware that runs natively under both WSGI and ASGI.

Django awaits a middleware that is marked as a coroutine function. Marking it only when the next handler is async
keeps the sync path (WSGI, the test client) free of event loops and the async path (daphne) free of the thread hop
Django would otherwise add around a sync-only middleware. Subclasses write their logic once per mode, `handle` and
`ahandle`, usually as thin wrappers around shared helpers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse


class SyncAsyncMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if iscoroutinefunction(self):
            return self.ahandle(request)
        return self.handle(request)

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError
