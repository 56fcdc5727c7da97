"""The console's index: a clinic user's home page; operators keep Django's index plus a link to each clinic's home.

Routed before `admin.site.urls` (voiceagent/urls.py), so `admin:index` still names /admin/ and every "Home"
breadcrumb of the console lands here. Tenancy through organizations.access: another clinic's home or export is a
404, like any of its objects.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from calls.audit import Action, AuditUnavailable, audit_read, audit_record, audit_unavailable_response
from calls.home.charts import Bar, bar_chart
from calls.home.export import (
    MAX_EXPORT_DAYS,
    MAX_EXPORT_ROWS,
    ExportRefused,
    async_chunks,
    checked_count,
    csv_lines,
    export_queryset,
    export_request,
)
from calls.home.selectors import DEFAULT_PERIOD, HomeStats, Period, home_stats
from calls.models import Call, Escalation
from core.errors import error_response
from organizations.access import organizations_for_user, role_in
from organizations.models import Membership, Organization

# The page's clock (tests set it: "today" must not depend on when they run).
clock: Callable[[], dt.datetime] = timezone.now
OPERATOR_CLINICS_LISTED = 50  # the operator's index links this many clinic homes (by name), then says how many more


def _clinic(request: HttpRequest, organization_id: uuid.UUID) -> Organization:
    organization = organizations_for_user(request.user).filter(pk=organization_id).first()
    if organization is None:
        raise Http404("No such clinic.")
    return organization


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """/admin/: a clinic user's home (their first clinic by name); operators get Django's index with links."""
    if request.user.is_superuser:
        return _operator_index(request)
    clinics = list(organizations_for_user(request.user).order_by("name", "pk")[:2])
    if not clinics:
        return admin.site.index(request)  # signed in, staff of no clinic: nothing to count
    return _home(request, clinics[0], several=len(clinics) > 1)


def _operator_index(request: HttpRequest) -> HttpResponse:
    clinics = list(Organization.objects.order_by("name", "pk").values("id", "name")[: OPERATOR_CLINICS_LISTED + 1])
    extra = {
        "clinic_homes": [
            {"name": clinic["name"], "url": reverse("home:clinic", args=[clinic["id"]])}
            for clinic in clinics[:OPERATOR_CLINICS_LISTED]
        ],
        "more_clinics": len(clinics) > OPERATOR_CLINICS_LISTED,
    }
    response = admin.site.index(request, extra_context=extra)
    if isinstance(response, TemplateResponse):
        response.template_name = "admin/home/operator_index.html"
    return response


def clinic_home(request: HttpRequest, organization_id: uuid.UUID) -> HttpResponse:
    organization = _clinic(request, organization_id)  # first: another clinic's page is a 404 whatever the method
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    several = request.user.is_superuser or organizations_for_user(request.user).exclude(pk=organization.pk).exists()
    return _home(request, organization, several=several)


def _home(request: HttpRequest, organization: Organization, *, several: bool) -> HttpResponse:
    raw = request.GET.get("period", DEFAULT_PERIOD.value)
    try:
        period = Period(raw)
    except ValueError:
        return HttpResponse(
            "Unknown period: choose today, 7d or 30d.", status=400, content_type="text/plain; charset=utf-8"
        )
    now = clock()
    stats = home_stats(organization, period=period, now=now)
    if stats.open_escalations:  # caller names and reasons are patient data: the read is recorded first
        try:
            audit_read(request, action=Action.LIST, objects=stats.open_escalations, via="console")
        except AuditUnavailable:
            return audit_unavailable_response()
    role = role_in(request.user, organization)
    context = {
        **admin.site.each_context(request),
        "title": f"{organization.name}: home",
        "organization": organization,
        "stats": stats,
        "period": period,
        "periods": [
            {"key": p.value, "label": p.label, "current": p == period, "url": f"?period={p.value}"} for p in Period
        ],
        "chart": _chart(stats, organization),
        "kpis": _kpis(stats),
        "levels": [
            {
                "level": row.level.value,
                "label": row.level.label,
                "raised": row.raised,
                "acknowledged": row.acknowledged,
                "open": row.open,
                "median": _duration(row.median_ack),
                "p90": _duration(row.p90_ack),
            }
            for row in stats.levels
        ],
        "open_escalations": [
            {
                "url": reverse("admin:calls_escalation_change", args=[escalation.pk]),
                "call_url": reverse("admin:calls_call_change", args=[escalation.call_id]),
                "level": escalation.level,
                "level_label": escalation.get_level_display(),
                "reason": escalation.reason.replace("_", " "),
                "caller": escalation.call.caller_name or escalation.call.caller_phone or "Unknown caller",
                "created_at": escalation.created_at,
                "age": _duration(now - escalation.created_at),
            }
            for escalation in stats.open_escalations
        ],
        "escalations_url": (
            reverse("admin:calls_escalation_changelist")
            + f"?status__exact={Escalation.Status.OPEN}&organization__id__exact={organization.pk}"
        ),
        "not_reviewed_url": (
            reverse("admin:calls_call_changelist")
            + "?"
            + urlencode(
                {
                    "reviewed": "no",
                    "status__in": ",".join(Call.TERMINAL_STATUSES),  # a live call is not ready for review
                    "organization__id__exact": str(organization.pk),
                    "started_at__gte": stats.window.start.isoformat(),  # the clinic-local day bounds, with offset
                    "started_at__lt": stats.window.end.isoformat(),
                }
            )
        ),
        "cost": "unpriced" if stats.cost is None else f"${stats.cost:,.2f}",
        "cost_per_call": (f"${stats.cost / stats.calls:,.3f}" if stats.cost is not None and stats.calls else ""),
        "can_export": role == Membership.Role.ADMIN,
        "export_url": reverse("home:export", args=[organization.pk]),
        "export_since": (stats.window.last - dt.timedelta(days=29)).isoformat(),
        "export_until": stats.window.last.isoformat(),
        "max_export_days": MAX_EXPORT_DAYS,
        "max_export_rows": f"{MAX_EXPORT_ROWS:,}",
        "other_clinics": (
            []
            if request.user.is_superuser or not several
            else [
                {"name": name, "url": reverse("home:clinic", args=[pk])}
                for pk, name in organizations_for_user(request.user)
                .exclude(pk=organization.pk)
                .order_by("name")
                .values_list("pk", "name")[:20]
            ]
        ),
        "is_operator": request.user.is_superuser,
    }
    return TemplateResponse(request, "admin/home/clinic_home.html", context)


def _kpis(stats: HomeStats) -> list[dict[str, Any]]:
    rows = [
        ("answered", "Answered by the agent", stats.answered),
        ("transferred", "Transferred to staff", stats.transferred),
        ("voicemail", "Voicemail", stats.voicemail),
        ("after_hours", "After hours", stats.after_hours),
        ("failed", "Dropped or failed", stats.failed),
    ]
    live = f"{stats.live} live now" if stats.live else ""
    return [
        {"key": "calls", "label": "Calls", "value": stats.calls, "note": live},
        *(
            {"key": key, "label": label, "value": value, "note": _share(value, stats.calls)}
            for key, label, value in rows
        ),
    ]


def _share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}% of calls" if whole else ""


def _duration(value: dt.timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _chart(stats: HomeStats, organization: Organization) -> dict[str, Any]:
    today = stats.window.period == Period.TODAY
    bars = []
    for key, total, escalated in stats.buckets:
        if today:
            label, long_label = f"{key:02d}", f"{key:02d}:00 to {key:02d}:59"
        elif isinstance(key, dt.date):
            label = f"{key:%d}" if stats.window.period == Period.MONTH else f"{key:%a}"
            long_label = f"{key:%a %d %b}"
        bars.append(Bar(label=label, long_label=long_label, total=total, highlighted=escalated))
    escalated = sum(bar.highlighted for bar in bars)
    busiest = max(bars, key=lambda bar: bar.total, default=None)
    what = "hour" if today else "day"
    description = f"{stats.calls} calls, {escalated} of them escalated, by {what} ({organization.timezone} time)."
    if busiest is not None and busiest.total:
        description += f" Busiest {what}: {busiest.long_label} with {busiest.total}."
    title = "Calls by hour today" if today else f"Calls by day, {stats.window.period.label.lower()}"
    return {
        "title": title,
        "svg": bar_chart(
            chart_id="calls-chart", title=title, description=description, bars=bars, every=3 if today else 1
        ),
        "description": description,
        "rows": [{"label": bar.long_label, "total": bar.total, "escalated": bar.highlighted} for bar in bars],
    }


def export(request: HttpRequest, organization_id: uuid.UUID) -> HttpResponseBase:
    """CSV of the clinic's calls or escalations for a range of days: clinic admins and operators only."""
    organization = _clinic(request, organization_id)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if role_in(request.user, organization) != Membership.Role.ADMIN:
        return error_response(403, "admin_only", "Only the clinic's admins can export its calls and escalations.")
    try:
        asked = export_request(organization, {key: request.GET.get(key, "") for key in ("kind", "since", "until")})
        queryset = export_queryset(organization, asked)
        rows = checked_count(queryset)
    except ExportRefused as refused:
        return error_response(400, refused.code, refused.message)
    try:  # before the first byte: a failed audit write sends nothing
        audit_record(
            action=Action.EXPORT,
            object_type="call" if asked.kind == "calls" else "escalation",
            organization_id=organization.pk,
            request=request,
            via="console",
            details={
                "kind": asked.kind,
                "since": asked.first.isoformat(),
                "until": asked.last.isoformat(),
                "rows": rows,
            },
        )
    except AuditUnavailable:
        return audit_unavailable_response()
    lines = csv_lines(organization, asked, queryset)
    content = async_chunks(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{asked.filename}"'
    return response
