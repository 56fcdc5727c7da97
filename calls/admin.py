"""Call review and the escalation queue in the staff console.

Everything a call records is written by the system, so the console shows it read-only; staff act on calls and
escalations only through the workflow steps in calls.services (mark reviewed, acknowledge, resolve, escalate).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from calls import ledger
from calls.audit import AuditedAdminMixin, AuditUnavailable, audit_read, audit_unavailable_response
from calls.audit_words import changes_only, event_sentence, names_for, object_history
from calls.board_view import escalation_label, trigger_words
from calls.intake import normalize_phone
from calls.models import (
    SEGMENT_SOURCE_KEY,
    SOURCE_FORWARDED,
    AuditEvent,
    Call,
    CallSummary,
    Escalation,
    Intake,
    TranscriptSegment,
)
from calls.services import (
    call_delete,
    call_escalate_by_staff,
    call_mark_reviewed,
    escalation_acknowledge,
    escalation_resolve,
)
from core.jsonsafe import printable
from organizations.access import can_administer, organizations_for_user, scope_for_user, signed_in
from organizations.admin import ClinicScopedAdmin, ObjectButton, admin_change_link
from organizations.clock import clinic_clock, clinic_time
from organizations.models import IntakeField

if TYPE_CHECKING:  # aliases that exist only in django-stubs
    from django.contrib.admin.options import _FieldGroups, _FieldsetSpec

EMPTY = "—"
USAGE_REPORT_DAYS = 14
HISTORY_ROWS = 200


def _escalations_url(call: Call) -> str:
    # All of the call's escalations, not only the queue's default (open ones).
    return reverse("admin:calls_escalation_changelist") + "?" + urlencode({"call": str(call.pk), "state": "all"})


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return EMPTY
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}:{rest:02d}"


def _interrupted_note(segment: TranscriptSegment) -> str:
    """For an agent line the caller spoke over: the text is what was generated, not all of it was heard."""
    if not segment.interrupted:
        return ""
    heard = f" after {segment.heard_ms / 1000:.1f} s" if segment.heard_ms is not None else ""
    return format_html(
        '<br><em class="segment-interrupted">Interrupted by the caller{}: the rest was not heard.</em>', heard
    )


def _pretty_json(value: object) -> str:
    if not value:
        return EMPTY
    # printable: a lone surrogate stored in JSON before input was checked (SQLite keeps it) must not make the page
    # fail to encode (a 500 for that call's page).
    return format_html("<pre>{}</pre>", printable(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)))


SUMMARY_LINE_CHARS = 90
_SUMMARY_STATE: dict[str, str] = {
    CallSummary.Status.PENDING: "Summary pending…",
    CallSummary.Status.FAILED: "No summary (failed)",
}


def _summary_of(call: Call) -> CallSummary | None:
    try:
        return call.summary
    except CallSummary.DoesNotExist:
        return None


class ReviewedFilter(admin.SimpleListFilter):
    title = "reviewed"
    parameter_name = "reviewed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("yes", "Reviewed"), ("no", "Not reviewed yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Call]) -> QuerySet[Call]:
        if self.value() == "yes":
            return queryset.filter(reviewed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(reviewed_at__isnull=True)
        return queryset


class ConnectedFilter(admin.SimpleListFilter):
    """By default the list hides web calls that never connected: started with the publishable key, then nothing
    (no sideband, no event, no heartbeat) until the reaper ended them. A flood of /api/call/start leaves only
    those, and they would bury the real calls (F5)."""

    title = "connection"
    parameter_name = "connected"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("all", "All calls"), ("never", "Never connected (hidden by default)")]

    def choices(self, changelist: Any) -> Any:
        # Django's own first link ("All") means "no parameter", which is our default (hidden): say so.
        for index, choice in enumerate(super().choices(changelist)):
            if index == 0:
                choice["display"] = "Connected calls"
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[Call]) -> QuerySet[Call]:
        if self.value() == "all":
            return queryset
        if self.value() == "never":
            return queryset.filter(NEVER_CONNECTED)
        return queryset.exclude(NEVER_CONNECTED)


class EscalationStateFilter(admin.SimpleListFilter):
    """The queue opens on what needs someone: open escalations. Every other view is one click away."""

    title = "status"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [
            ("unresolved", "Open or acknowledged"),
            (Escalation.Status.ACKNOWLEDGED.value, "Acknowledged"),
            (Escalation.Status.RESOLVED.value, "Resolved"),
            ("all", "All"),
        ]

    def choices(self, changelist: Any) -> Any:
        for index, choice in enumerate(super().choices(changelist)):
            if index == 0:
                choice["display"] = "Open (default)"  # Django's "All" link means "no parameter": our default
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[Escalation]) -> QuerySet[Escalation]:
        value = self.value()
        if value == "all" or "status__exact" in request.GET:  # an explicit status filter decides alone
            return queryset
        if value == "unresolved":
            return queryset.exclude(status=Escalation.Status.RESOLVED)
        if value in (Escalation.Status.ACKNOWLEDGED, Escalation.Status.RESOLVED):
            return queryset.filter(status=value)
        return queryset.filter(status=Escalation.Status.OPEN)


class AuditHistoryMixin(ClinicScopedAdmin[Any]):
    """The History page of a call or an escalation: what the audit trail recorded about it, in words. Clinic admins
    and operators see reads too (who viewed it); staff see the changes (they do not review colleagues' access, as
    in the audit trail)."""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_or_change_permission(request, obj):
            raise Http404(f"No {self.opts.verbose_name} matches the given id.")
        events = object_history(obj)
        sees_reads = can_administer(request.user, obj.organization)
        if not sees_reads:
            events = changes_only(events)
        rows = list(events.order_by("-at", "-id")[: HISTORY_ROWS + 1])
        truncated = len(rows) > HISTORY_ROWS
        rows = rows[:HISTORY_ROWS]
        names = names_for(rows, request.user)
        try:  # the page names the caller: a read like the change page
            audit_read(
                request, action=AuditEvent.Action.VIEW, objects=[obj], via="console", details={"page": "history"}
            )
        except AuditUnavailable:
            return audit_unavailable_response()
        may_open_rows = self.admin_site.get_model_admin(AuditEvent).has_view_permission(request)
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}",
            "opts": self.opts,
            "object": obj,
            "change_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]),
            "scope_note": "Every read and change recorded in the audit trail."
            if sees_reads
            else "Every change recorded in the audit trail (clinic admins also see who viewed it).",
            "rows": [
                {
                    "at": clinic_time(event.at, obj.organization),
                    "sentence": event_sentence(event, names),
                    "via": event.via or EMPTY,
                    "url": reverse("admin:calls_auditevent_change", args=[event.pk]) if may_open_rows else "",
                }
                for event in rows
            ],
            "truncated": truncated,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit_history.html", context)


# A web call the reaper ended without it ever showing any activity, and that no sideband attached to.
NEVER_CONNECTED = Q(
    channel=Call.Channel.WEB,
    status=Call.Status.ABANDONED,
    end_reason=Call.EndReason.INTERRUPTED,
    last_activity_at__isnull=True,
    openai_call_id__isnull=True,
)


_INLINE_ESCALATION_COLUMNS = ("raised", "level", "what", "source", "status", "acknowledged_by", "resolved_by")


class EscalationInline(admin.TabularInline[Escalation, Call]):
    """The call's escalations, read-only: they change state only through the queue's actions."""

    model = Escalation
    fk_name = "call"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = _INLINE_ESCALATION_COLUMNS
    readonly_fields = _INLINE_ESCALATION_COLUMNS
    ordering = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Escalation]:
        return scope_for_user(super().get_queryset(request), request.user).select_related(
            "organization", "acknowledged_by", "resolved_by"
        )

    @admin.display(description="Raised")
    def raised(self, obj: Escalation) -> str:
        return clinic_time(obj.created_at, obj.organization)

    @admin.display(description="What")
    def what(self, obj: Escalation) -> str:
        return escalation_label(obj)

    # Django's inlines take the parent object here; mypy still checks against BaseModelAdmin's (request) only.
    def has_add_permission(self, request: HttpRequest, obj: Call | None) -> bool:  # type: ignore[override]
        return False

    def has_change_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(AuditedAdminMixin, AuditHistoryMixin, ClinicScopedAdmin[Call]):  # reads recorded (calls.audit)
    list_display = [
        "started",
        "organization",
        "channel",
        "status",
        "caller",
        "summary_line",
        "urgency_label",
        "escalations_link",
        "duration",
        "reviewed",
    ]
    list_display_links = ["started"]
    list_filter = [
        "status",
        "escalated",
        "channel",
        "urgency",
        ReviewedFilter,
        ConnectedFilter,
        ("organization", admin.RelatedOnlyFieldListFilter),
    ]
    date_hierarchy = "started_at"
    # get_search_results below implements these without a join (no duplicate rows, no DISTINCT over calls).
    search_fields = ["caller_phone", "caller_name", "segments__text"]
    search_help_text = "Search by caller phone or name, or by words said in the call."
    list_select_related = ["organization", "reviewed_by", "summary"]
    show_full_result_count = False  # COUNT(*) over a clinic's whole history on every page is wasted work
    ordering = ["-started_at"]
    list_per_page = 50
    actions = ["mark_reviewed"]
    inlines = [EscalationInline]
    fieldsets = [
        ("Call", {"fields": ["organization", "channel", "status", "end_reason", "started", "ended", "duration"]}),
        ("Caller", {"fields": ["caller_name", "caller_phone", "urgency_label", "escalation_summary"]}),
        ("Summary", {"fields": ["summary_display"]}),
        ("Recording", {"fields": ["recording_player"]}),
        ("Intake", {"fields": ["intake_table"]}),
        ("Transcript", {"fields": ["transcript_table"]}),
        ("Review", {"fields": ["reviewed_by", "reviewed_at_display"]}),
        ("Cost and speed", {"fields": ["cost_display", "latency_display", "ledger_table"]}),
        (
            "Technical details",
            {
                "classes": ["collapse"],
                "fields": [
                    "id",
                    "twilio_call_sid",
                    "openai_call_id",
                    "last_activity",
                    "metadata_display",
                    "usage_display",
                ],
            },
        ),
    ]
    readonly_fields = [
        "started",
        "ended",
        "reviewed_at_display",
        "last_activity",
        "open_escalations",
        "duration",
        "urgency_label",
        "escalation_summary",
        "summary_display",
        "recording_player",
        "intake_table",
        "transcript_table",
        "metadata_display",
        "usage_display",
        "cost_display",
        "latency_display",
        "ledger_table",
        "id",
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Call], search_term: str
    ) -> tuple[QuerySet[Call], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        matching = Q(caller_phone__icontains=term) | Q(caller_name__icontains=term)
        phone = normalize_phone(term)
        if phone:
            matching |= Q(caller_phone=phone)  # "(415) 555-0123" finds +14155550123
        # A subquery instead of a join: a call whose transcript says the term ten times is listed once.
        matching |= Q(pk__in=TranscriptSegment.objects.filter(text__icontains=term).values("call_id"))
        return queryset.filter(matching), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # calls are created by callers, never typed in

    def has_delete_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return request.user.is_superuser and obj is not None  # operators only, one call at a time

    def has_change_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        # A call's record is read-only; the change permission only unlocks the review actions.
        return obj is None and super().has_change_permission(request)

    def delete_model(self, request: HttpRequest, obj: Call) -> None:
        call_delete(call=obj)  # records the delete in the audit trail

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        for call in queryset:
            call_delete(call=call)

    # Columns ---------------------------------------------------------------------------------------------------------

    @admin.display(description="Started (clinic time)", ordering="started_at")
    def started(self, obj: Call) -> str:
        return clinic_time(obj.started_at, obj.organization)

    @admin.display(description="Ended")
    def ended(self, obj: Call) -> str:
        return clinic_time(obj.ended_at, obj.organization)

    @admin.display(description="Last activity")
    def last_activity(self, obj: Call) -> str:
        return clinic_time(obj.last_activity_at, obj.organization)

    @admin.display(description="Reviewed at")
    def reviewed_at_display(self, obj: Call) -> str:
        return clinic_time(obj.reviewed_at, obj.organization)

    @admin.display(description="Caller")
    def caller(self, obj: Call) -> str:
        return obj.caller_name or obj.caller_phone or EMPTY

    @admin.display(description="Summary")
    def summary_line(self, obj: Call) -> str:
        summary = _summary_of(obj)
        if summary is None:
            return EMPTY
        if summary.status != CallSummary.Status.DONE:
            return format_html(
                '<span class="call-summary-{}">{}</span>', summary.status, _SUMMARY_STATE[summary.status]
            )
        text = (
            summary.summary
            if len(summary.summary) <= SUMMARY_LINE_CHARS
            else summary.summary[:SUMMARY_LINE_CHARS] + "…"
        )
        follow_up = (
            format_html(' <strong class="call-summary-follow-up">{}</strong>', "Follow-up")
            if summary.follow_up_needed
            else ""
        )
        return format_html('<span class="call-summary-line" title="{}">{}</span>{}', summary.summary, text, follow_up)

    @admin.display(description="Urgency", ordering="urgency")
    def urgency_label(self, obj: Call) -> str:
        return obj.get_urgency_display() or EMPTY

    @admin.display(description="Escalation", ordering="escalation_level")
    def escalations_link(self, obj: Call) -> str:
        if not obj.escalated:
            return EMPTY
        level = Escalation.Level(obj.escalation_level).label if obj.escalation_level else "Escalated"
        return format_html('<a href="{}">{}</a>', _escalations_url(obj), level)

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, obj: Call) -> str:
        return _duration(obj.duration_seconds)

    @admin.display(description="Review", ordering="reviewed_at")
    def reviewed(self, obj: Call) -> str:
        # Words, not Django's red cross: an unreviewed call is work to do, not an error.
        if obj.is_reviewed:
            return "Reviewed"
        return "Not yet"

    # Change page ---------------------------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Call | None = None) -> _FieldsetSpec:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and self._unresolved(obj):
            # What needs acting on comes first: the open emergency must not sit at the bottom of the page.
            fieldsets.insert(0, ("Open escalations", {"fields": ["open_escalations"], "classes": ["open-escalations"]}))
        return fieldsets

    def _unresolved(self, obj: Call) -> list[Escalation]:
        # `obj` came through the scoped queryset, and a call's escalations belong to the call's clinic.
        return list(
            Escalation.objects.filter(call=obj, organization_id=obj.organization_id)
            .exclude(status=Escalation.Status.RESOLVED)
            .select_related("organization", "acknowledged_by", "call")
            .order_by("created_at")
        )

    @admin.display(description="Needs acting on")
    def open_escalations(self, obj: Call) -> str:
        rows = []
        for escalation in self._unresolved(obj):
            state = (
                f"acknowledged by {escalation.acknowledged_by.get_username()}"
                if escalation.acknowledged_by
                else "not acknowledged"
            )
            rows.append(
                (
                    escalation.level,
                    escalation.get_level_display(),
                    escalation_label(escalation),
                    clinic_time(escalation.created_at, escalation.organization),
                    state,
                    reverse("admin:calls_escalation_change", args=[escalation.pk]),
                )
            )
        callback = (
            format_html(' · <a href="tel:{}" class="callback">Call back {}</a>', obj.caller_phone, obj.caller_phone)
            if obj.caller_phone
            else ""
        )
        return format_html(
            "<ul class='open-escalations-list'>{}</ul>{}",
            format_html_join(
                "",
                '<li class="escalation-{}"><strong>{}</strong>: {}, raised {} ({}) · <a href="{}">act on it</a></li>',
                rows,
            ),
            callback,
        )

    @admin.display(description="Escalations")
    def escalation_summary(self, obj: Call) -> str:
        if not obj.escalated:
            return "Not escalated"
        level = Escalation.Level(obj.escalation_level).label
        return format_html(
            'Highest level: {} · <a href="{}">open in the escalation queue</a>', level, _escalations_url(obj)
        )

    @admin.display(description="Post-call summary")
    def summary_display(self, obj: Call) -> str:
        summary = _summary_of(obj)
        if summary is None:
            return "No summary: the call is live, or ended before summaries were made."
        if summary.status == CallSummary.Status.PENDING:
            tries = f" (attempt {summary.attempts + 1})" if summary.attempts else ""
            return f"Being written after the call{tries}; it appears here when done. The transcript below is complete."
        if summary.status == CallSummary.Status.FAILED:
            return (
                f"Could not be written ({summary.last_error or 'error'}, {summary.attempts} attempts). "
                "The transcript below is complete; an operator can retry with manage.py summarize_calls."
            )
        made_by = f"Written by {summary.model} from the transcript" if summary.model else "Nothing was said"
        return format_html(
            '<div class="call-summary"><p class="call-summary-text">{}</p><table>'
            "<tr><th>Reason for the call</th><td>{}</td></tr>"
            '<tr><th>Follow-up needed</th><td class="call-summary-follow-up-value">{}</td></tr>'
            '</table><p class="help">{} on {}; the transcript below is the record.</p></div>',
            summary.summary,
            summary.reason_for_call or EMPTY,
            "Yes" if summary.follow_up_needed else "No",
            made_by,
            clinic_time(summary.completed_at, obj.organization),
        )

    @admin.display(description="Recordings")
    def recording_player(self, obj: Call) -> str:
        # Streamed through our server (login, tenancy and audit checked there); Twilio's URL never reaches the page.
        players = []
        for part, url_name, label in (
            ("recording", "call-recording-whole", "The whole call"),
            ("voicemail", "call-recording", "Voicemail left by the caller"),
        ):
            stored = (obj.metadata or {}).get(part)
            if not isinstance(stored, dict) or not stored.get("recording_sid"):
                continue
            if part == "recording" and stored.get("status") != "completed":
                players.append(format_html('<p class="help">{}: the recording failed at Twilio.</p>', label))
                continue
            url = reverse(url_name, args=[obj.pk])
            duration = stored.get("duration")
            length = f" ({_duration(duration)})" if isinstance(duration, int) else ""
            players.append(
                format_html(
                    '<audio class="call-recording" controls preload="metadata" src="{}"></audio>'
                    '<p class="help">{}{}. <a href="{}">Download</a></p>',
                    url,
                    label,
                    length,
                    url,
                )
            )
        return format_html_join("", "{}", ((player,) for player in players)) if players else "No recording."

    @admin.display(description="Intake")
    def intake_table(self, obj: Call) -> str:
        intake = Intake.objects.filter(call=obj).first()
        if intake is None:
            return "No intake was taken."
        fields = list(IntakeField.objects.filter(organization_id=obj.organization_id).order_by("position", "id"))
        known = {field.name for field in fields}
        rows = [(field.name, field.description, intake.data.get(field.name)) for field in fields]
        rows += [
            (name, "(no longer an intake field)", value) for name, value in intake.data.items() if name not in known
        ]
        status = "Complete" if intake.completed else "Incomplete"
        return format_html(
            "<p>{}{}</p><table><thead><tr><th>Field</th><th>Value</th><th>Asked for</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            status,
            f" · urgency: {intake.get_urgency_display()}" if intake.urgency else "",
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
                ((name, _intake_value(value), description) for name, description, value in rows),
            ),
        )

    @admin.display(description="Transcript")
    def transcript_table(self, obj: Call) -> str:
        # Conversation order: a caller's words transcribed after the agent's reply still come before it.
        segments = list(
            obj.segments.order_by("position", "seq").only(
                "seq", "position", "speaker", "text", "occurred_at", "interrupted", "heard_ms", "metadata"
            )
        )
        if not segments:
            return "No transcript."
        tz = obj.organization.tz
        return format_html(
            "<table><thead><tr><th>#</th><th>Time</th><th>Speaker</th><th>Said</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td><strong>{}</strong></td>"
                '<td style="white-space: pre-wrap">{}{}</td></tr>',
                (
                    (
                        number,
                        clinic_clock(seg.occurred_at, tz),
                        # Lines the browser reported, not the server's own connection, say so.
                        f"{seg.get_speaker_display()} (forwarded)"
                        if (seg.metadata or {}).get(SEGMENT_SOURCE_KEY) == SOURCE_FORWARDED
                        else seg.get_speaker_display(),
                        seg.text,
                        _interrupted_note(seg),
                    )
                    for number, seg in enumerate(segments, start=1)
                ),
            ),
        )

    @admin.display(description="Metadata")
    def metadata_display(self, obj: Call) -> str:
        return _pretty_json(obj.metadata)

    @admin.display(description="Token usage")
    def usage_display(self, obj: Call) -> str:
        return _pretty_json(obj.usage)

    @admin.display(description="Estimated cost")
    def cost_display(self, obj: Call) -> str:
        return _cost(ledger.call_cost(obj))

    @admin.display(description="Agent answer time")
    def latency_display(self, obj: Call) -> str:
        return _latency(ledger.latency_summary(obj.turn_latencies_ms or []))

    @admin.display(description="Usage")
    def ledger_table(self, obj: Call) -> str:
        rows = [(name.replace("_", " ").capitalize(), f"{value:,}") for name, value in ledger.call_usage(obj).items()]
        rows.append(("Models", " / ".join(m for m in (obj.realtime_model, obj.transcription_model) if m) or EMPTY))
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    # Usage by day ----------------------------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "usage-by-day/", self.admin_site.admin_view(self.usage_by_day_view), name="calls_call_usage_by_day"
        )
        return [report, *super().get_urls()]  # before the change page's catch-all <path:object_id>/

    def usage_by_day_view(self, request: HttpRequest) -> HttpResponse:
        """Calls, tokens, estimated cost and agent answer time per clinic and clinic day, for the user's clinics."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        clinics = organizations_for_user(request.user)
        chosen = request.GET.get("organization", "")
        if chosen:
            try:
                clinics = clinics.filter(pk=uuid.UUID(chosen))
            except ValueError:
                raise Http404("No such clinic.") from None
            if not clinics.exists():
                raise Http404("No such clinic.")  # another clinic's report looks absent, as its calls do
        try:
            days = min(max(int(request.GET.get("days", USAGE_REPORT_DAYS)), 1), 92)
        except ValueError:
            days = USAGE_REPORT_DAYS
        # Days are clinic days; a clinic east of the server's zone may already be a day ahead of it.
        until = timezone.localdate() + dt.timedelta(days=1)
        rows = ledger.usage_by_day(clinics, since=until - dt.timedelta(days=days), until=until)
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage, cost and answer time by day",
            "opts": self.opts,
            "days": days,
            "rows": [
                {
                    "clinic": row.organization.name,
                    "day": row.day,
                    "calls": row.calls,
                    "input_tokens": f"{row.input_tokens:,}",
                    "cached_tokens": f"{row.counts.get('input_cached_tokens', 0):,}",
                    "output_tokens": f"{row.output_tokens:,}",
                    "transcription": _transcription(row.transcription_tokens, row.counts["transcription_audio_ms"]),
                    "cost": _cost(row.cost),
                    "latency": _latency(row.latency),
                }
                for row in rows
            ],
        }
        return TemplateResponse(request, "admin/calls/call/usage_by_day.html", context)

    # Workflow --------------------------------------------------------------------------------------------------------

    @admin.action(description="Mark selected calls as reviewed", permissions=["change"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        count = 0
        for call in queryset.filter(reviewed_at__isnull=True):
            call_mark_reviewed(call=call, user=signed_in(request.user))
            count += 1
        self.message_user(request, f"{count} call(s) marked as reviewed.", messages.SUCCESS)

    def get_object_buttons(self, request: HttpRequest, obj: Call) -> list[ObjectButton[Call]]:
        if obj.is_reviewed or not super().has_change_permission(request):
            return []

        def review(request: HttpRequest, call: Call, note: str) -> str:
            call_mark_reviewed(call=call, user=signed_in(request.user))
            return "Call marked as reviewed."

        return [
            ObjectButton(
                name="mark-reviewed",
                label="Mark reviewed",
                explanation="Record that you reviewed this call (your name and the time are kept).",
                run=review,
            )
        ]

    def get_object_links(self, request: HttpRequest, obj: Call) -> list[dict[str, str]]:
        links: list[dict[str, str]] = []
        if obj.escalated:
            links.append({"label": "Escalations", "url": _escalations_url(obj)})
        escalations = self.admin_site.get_model_admin(Escalation)
        if escalations.has_add_permission(request):
            url = reverse("admin:calls_escalation_add") + "?" + urlencode({"call": str(obj.pk)})
            links.append({"label": "Escalate", "url": url})
        return links


def _cost(cost: Decimal | None) -> str:
    return "no price for a model used (REALTIME_PRICES)" if cost is None else f"${cost}"


def _latency(summary: dict[str, int | None]) -> str:
    if not summary["turns"]:
        return EMPTY
    return f"median {summary['p50']} ms, 95th percentile {summary['p95']} ms ({summary['turns']} turns)"


def _transcription(tokens: int, audio_ms: int) -> str:
    parts = [f"{tokens:,} tokens"] if tokens else []
    if audio_ms:
        parts.append(f"{audio_ms / 60_000:,.1f} min")
    return ", ".join(parts) or EMPTY


def _intake_value(value: object) -> str:
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


@admin.register(Escalation)
# Reads recorded (calls.audit), History in words (AuditHistoryMixin).
class EscalationAdmin(AuditedAdminMixin, AuditHistoryMixin, ClinicScopedAdmin[Escalation]):
    list_display = [
        "raised",
        "level",
        "status",
        "organization",
        "call_link",
        "reason",
        "source",
        "acknowledged_by",
        "resolved_by",
    ]
    list_display_links = ["raised", "level"]
    list_filter = [EscalationStateFilter, "level", "source", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["reason", "call__caller_phone", "call__caller_name"]
    search_help_text = "Search by reason or the caller's phone or name."
    list_select_related = ["call", "call__organization", "organization", "acknowledged_by", "resolved_by"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    # The work queue: open first, then acknowledged, then resolved; newest first within each.
    ordering = [
        Case(
            When(status=Escalation.Status.OPEN, then=Value(0)),
            When(status=Escalation.Status.ACKNOWLEDGED, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        ).asc(),
        "-created_at",
    ]
    actions = ["acknowledge", "resolve"]
    autocomplete_fields = ["call"]
    add_fields: _FieldGroups = ["call", "level", "reason", "evidence"]
    fieldsets = [
        (
            None,
            {"fields": ["organization", "call_link", "level", "what", "source", "status", "raised_at", "created_by"]},
        ),
        ("Caller", {"fields": ["caller", "callback"]}),
        ("What happened", {"fields": ["words", "reason", "evidence", "after_call", "triage_explanation"]}),
        (
            "Handling",
            {
                "fields": [
                    "acknowledged_by",
                    "acknowledged_at_display",
                    "resolved_by",
                    "resolved_at_display",
                    "resolution_note",
                ]
            },
        ),
        ("On-call pages", {"fields": ["acknowledged_by_person", "paging_next_at", "pages_display"]}),
    ]
    readonly_fields = [
        "call_link",
        "triage_explanation",
        "pages_display",
        "what",
        "raised_at",
        "caller",
        "callback",
        "words",
        "acknowledged_at_display",
        "resolved_at_display",
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Escalation | None = None) -> _FieldsetSpec:
        if obj is None:
            return [(None, {"fields": self.add_fields, "description": "Flag a call for a colleague's attention."})]
        return self.fieldsets

    def has_change_permission(self, request: HttpRequest, obj: Escalation | None = None) -> bool:
        # An escalation's record is read-only; the change permission only unlocks acknowledge/resolve.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Escalation | None = None) -> bool:
        return False  # the queue is an audit trail

    def save_model(
        self, request: HttpRequest, obj: Escalation, form: forms.ModelForm[Escalation], change: bool
    ) -> None:
        if change:
            return
        # The API's staff escalation: same escalation, audit rows and staff_actions entry.
        escalation, created = call_escalate_by_staff(
            call=obj.call, user=signed_in(request.user), level=obj.level, reason=obj.reason, evidence=obj.evidence
        )
        obj.pk = escalation.pk
        obj.refresh_from_db()
        if not created:
            self.message_user(
                request, "This call already had an unresolved escalation of that level; showing it.", messages.INFO
            )

    @admin.display(description="Raised (clinic time)", ordering="created_at")
    def raised(self, obj: Escalation) -> str:
        return clinic_time(obj.created_at, obj.organization)

    @admin.display(description="What")
    def what(self, obj: Escalation) -> str:
        return escalation_label(obj)

    @admin.display(description="Raised")
    def raised_at(self, obj: Escalation) -> str:
        return clinic_time(obj.created_at, obj.organization)

    @admin.display(description="Acknowledged at")
    def acknowledged_at_display(self, obj: Escalation) -> str:
        return clinic_time(obj.acknowledged_at, obj.organization)

    @admin.display(description="Resolved at")
    def resolved_at_display(self, obj: Escalation) -> str:
        return clinic_time(obj.resolved_at, obj.organization)

    @admin.display(description="Name")
    def caller(self, obj: Escalation) -> str:
        return obj.call.caller_name or "Not given"

    @admin.display(description="Callback number")
    def callback(self, obj: Escalation) -> str:
        if not obj.call.caller_phone:
            return "No number (a browser call without one)"
        return format_html('<a href="tel:{0}" class="callback">Call back {0}</a>', obj.call.caller_phone)

    @admin.display(description="The words that raised it")
    def words(self, obj: Escalation) -> str:
        trigger = trigger_words(obj)
        if trigger is None:
            return EMPTY
        text = trigger["text"]
        parts: list[str] = []
        at = 0
        for start, end in trigger["highlights"]:
            parts.append(format_html("{}<mark>{}</mark>", text[at:start], text[start:end]))
            at = end
        parts.append(format_html("{}", text[at:]))
        said = format_html(" <small>({})</small>", trigger["said_at"]) if trigger.get("said_at") else ""
        return format_html(
            "<q class='trigger-words'>{}{}{}</q>{}",
            "… " if trigger.get("cut_before") else "",
            mark_safe("".join(parts)),  # noqa: S308 (each part escaped by format_html above)
            " …" if trigger.get("cut_after") else "",
            said,
        )

    @admin.display(description="Call", ordering="call__started_at")
    def call_link(self, obj: Escalation) -> str:
        call = obj.call
        who = call.caller_name or call.caller_phone or call.get_channel_display() + " caller"
        return admin_change_link(call, f"{who}, {clinic_time(call.started_at, call.organization)}")

    @admin.display(description="Pages sent")
    def pages_display(self, obj: Escalation) -> str:
        """Every page attempt: who, how, when (clinic time) and what became of it, failed tries included."""
        pages = list(obj.pages.order_by("step", "channel"))
        if not pages:
            return "No one was paged (the clinic's rule for this level is board only, or nobody is on call)."
        rows = [
            (
                page.step + 1,
                page.person_name,
                page.get_channel_display(),
                clinic_time(page.created_at, obj.organization),
                page.get_status_display(),
                clinic_time(page.sent_at, obj.organization) if page.sent_at else EMPTY,
                clinic_time(page.delivered_at, obj.organization) if page.delivered_at else EMPTY,
                page.tries,
                page.last_error or EMPTY,
            )
            for page in pages
        ]
        header = ("#", "Person", "Channel", "Paged", "Status", "Sent", "Delivered", "Tries", "Last error")
        return format_html(
            "<table class='pages'><tr>{}</tr>{}</table>",
            format_html_join("", "<th>{}</th>", ((title,) for title in header)),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td></tr>",
                rows,
            ),
        )

    @admin.display(description="Why triage escalated")
    def triage_explanation(self, obj: Escalation) -> str:
        """The decision in words: which rules matched (and on which words), which guards spoke, what the learned
        layer thought. Empty for escalations raised by the agent, staff or the system."""
        explanation = obj.triage or {}
        if not explanation:
            return "—"
        rows: list[tuple[str, str]] = []
        decided = {"rules": "the rules", "model": "the learned layer", "rules+model": "the rules and the learned layer"}
        rows.append(("Decided by", decided.get(explanation.get("decided_by", ""), "—")))
        if explanation.get("rules"):
            rows.append(("Rules", ", ".join(explanation["rules"])))
        if explanation.get("evidence"):
            rows.append(("Words", ", ".join(f"“{word}”" for word in explanation["evidence"])))
        model = explanation.get("model") or {}
        if model:
            rows.append(
                ("Learned layer", f"{model.get('level', '?')} ({model.get('probability', 0):.0%} for this level)")
            )
        if explanation.get("vetoes"):
            rows.append(("Guards in the words", ", ".join(explanation["vetoes"])))
        if explanation.get("self_harm") == "other":
            rows.append(("Self-harm", "someone else's intent, reported by the caller (911 for them, caller kept on)"))
        elif explanation.get("self_harm") == "self":
            rows.append(("Self-harm", "the caller's own (988 first)"))
        return format_html(
            "<table class='triage-explanation'>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    # Workflow --------------------------------------------------------------------------------------------------------

    @admin.action(description="Acknowledge selected escalations", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Escalation]) -> None:
        count = 0
        for escalation in queryset.filter(status=Escalation.Status.OPEN):
            escalation_acknowledge(escalation=escalation, user=signed_in(request.user))
            count += 1
        self.message_user(request, f"{count} escalation(s) acknowledged.", messages.SUCCESS)

    @admin.action(description="Resolve selected escalations", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Escalation]) -> HttpResponse | None:
        # Resolving asks for a short note (what was done): an intermediate page, as Django's delete action has.
        note = request.POST.get("note", "").strip()[:2000]
        if not note:
            context = {
                **self.admin_site.each_context(request),
                "title": "Resolve escalations",
                "opts": self.opts,
                "escalations": list(queryset.exclude(status=Escalation.Status.RESOLVED)),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "note_missing": "note" in request.POST,
            }
            status = 400 if "note" in request.POST else 200
            return TemplateResponse(request, "admin/calls/escalation/resolve_selected.html", context, status=status)
        count = 0
        for escalation in queryset.exclude(status=Escalation.Status.RESOLVED):
            escalation_resolve(escalation=escalation, user=signed_in(request.user), note=note)
            count += 1
        self.message_user(request, f"{count} escalation(s) resolved.", messages.SUCCESS)
        return None

    def get_object_buttons(self, request: HttpRequest, obj: Escalation) -> list[ObjectButton[Escalation]]:
        if not super().has_change_permission(request):
            return []

        def acknowledge(request: HttpRequest, escalation: Escalation, note: str) -> str:
            escalation_acknowledge(escalation=escalation, user=signed_in(request.user))
            return "Escalation acknowledged."

        def resolve(request: HttpRequest, escalation: Escalation, note: str) -> str:
            escalation_resolve(escalation=escalation, user=signed_in(request.user), note=note)
            return "Escalation resolved."

        buttons: list[ObjectButton[Escalation]] = []
        if obj.status == Escalation.Status.OPEN:
            buttons.append(
                ObjectButton(
                    name="acknowledge",
                    label="Acknowledge",
                    explanation="Tell your colleagues you are handling this escalation (your name and the time "
                    "are recorded).",
                    run=acknowledge,
                )
            )
        if obj.status != Escalation.Status.RESOLVED:
            buttons.append(
                ObjectButton(
                    name="resolve",
                    label="Resolve",
                    explanation="Close this escalation (your name and the time are recorded). Say in a short "
                    "note what was done: it is kept with the escalation for the next person.",
                    run=resolve,
                    with_note=True,
                    note_required=True,
                )
            )
        return buttons

    def get_object_links(self, request: HttpRequest, obj: Escalation) -> list[dict[str, str]]:
        return [{"label": "Open the call", "url": reverse("admin:calls_call_change", args=[obj.call_id])}]
