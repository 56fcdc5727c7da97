"""The reference browser-call page at /demo/call/ (a copyable example for a clinic's web developer)."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organizations.models import Organization


@require_GET
def demo_call(request: HttpRequest) -> HttpResponse:
    # Publishable keys are public by design (they sit in every clinic web page); prefill only in development.
    organization = Organization.objects.order_by("name").first() if settings.DEBUG else None
    context = {
        "publishable_key": organization.publishable_key if organization else "",
        "fake_upstream": not settings.OPENAI_API_KEY,
        # Escaped for a <script type="application/json"> block: no "</" can close it early.
        "config": json.dumps({"openaiBaseUrl": settings.OPENAI_BASE_URL}).replace("</", "<\\/"),
    }
    return render(request, "realtime/demo_call.html", context)
