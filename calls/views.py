"""The live escalation board page. The page renders a snapshot; board.js keeps it live over /ws/board/."""

from __future__ import annotations

import zoneinfo

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from calls.audit import board_page_refusal
from calls.notifications import board_escalations
from organizations.access import organizations_for_user
from organizations.clock import zone_label


@require_GET
@login_required
def board(request: HttpRequest) -> HttpResponse:
    organizations = list(organizations_for_user(request.user).order_by("name").values("id", "name", "timezone"))
    zones = sorted({organization["timezone"] for organization in organizations})
    context = {
        **admin.site.each_context(request),
        "title": "Live escalation board",
        "is_nav_sidebar_enabled": False,  # the board wants the whole width on a wall screen
        "organizations": [organization["name"] for organization in organizations],
        # One zone per page: a clinic's board shows its own zone; several clinics label each time with theirs.
        "zone_note": f"times in {zone_label(zoneinfo.ZoneInfo(zones[0]))}"
        if len(zones) == 1
        else "times in each clinic's own zone",
        "snapshot": board_escalations([organization["id"] for organization in organizations]),
    }
    if (refused := board_page_refusal(request, context["snapshot"])) is not None:  # audit hook, fail closed
        return refused
    status = 200 if organizations else 403  # signed in, but staff of no clinic: nothing to watch
    return render(request, "calls/board.html", context, status=status)
