"""The reference browser-call page at /demo/call/ (a copyable example for a clinic's web developer)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organizations.models import Organization


def openai_origin() -> str:
    """The origin of OPENAI_BASE_URL (scheme://host[:port]), read when the page is served: `serve` points it at the
    built-in fake after settings were loaded."""
    parts = urlsplit(settings.OPENAI_BASE_URL)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"  # never user:password@ from the URL into a response header


def local_upstream() -> bool:
    """No key, or OPENAI_BASE_URL on this machine: the built-in fake (`serve` starts it on a loopback port)."""
    host = urlsplit(settings.OPENAI_BASE_URL).hostname or ""
    return not settings.OPENAI_API_KEY or host in ("127.0.0.1", "localhost", "::1")


@require_GET
def demo_call(request: HttpRequest) -> HttpResponse:
    # A development page: in production (PUBLIC_DEMO_PAGE off) only console staff see it, anyone else a plain 404.
    if not settings.PUBLIC_DEMO_PAGE and not (request.user.is_active and request.user.is_staff):
        raise Http404
    # Publishable keys are public by design (they sit in every clinic web page); prefill only in development.
    organization = Organization.objects.order_by("name").first() if settings.DEBUG else None
    context = {
        "publishable_key": organization.publishable_key if organization else "",
        "fake_upstream": local_upstream(),
        # Escaped for a <script type="application/json"> block: no "</" can close it early.
        "config": json.dumps({"openaiBaseUrl": settings.OPENAI_BASE_URL}).replace("</", "<\\/"),
    }
    response = render(request, "realtime/demo_call.html", context)
    # The page posts its WebRTC offer to OpenAI (`{openaiBaseUrl}/realtime/calls`): this page alone may connect to
    # exactly that origin; every other page keeps connect-src 'self'.
    policy: dict[str, Any] = dict(settings.SECURE_CSP)
    if policy:
        connect: list[str] = [*list(policy.get("connect-src") or []), openai_origin()]
        response._csp_config = {**policy, "connect-src": connect}  # type: ignore[attr-defined]
    return response
