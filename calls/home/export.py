"""CSV export of a clinic's calls or escalations for a range of its own calendar days.

Bounded (at most MAX_EXPORT_DAYS days and MAX_EXPORT_ROWS rows, refused with a clear 400 before anything is sent),
audited (one `export` row naming the kind, the range and the row count, written before the first byte), streamed
(rows are read in chunks and written as they go), and safe to open in a spreadsheet: a text cell that starts with
= + - @ (or a tab or carriage return) is prefixed with an apostrophe so it is never run as a formula (OWASP CSV
injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from calls.ledger import call_cost
from calls.models import Call, Escalation
from organizations.models import Organization

MAX_EXPORT_DAYS = 92
MAX_EXPORT_ROWS = 50_000
CHUNK = 2_000
KINDS = ("calls", "escalations")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CALL_COLUMNS = [
    "call_id",
    "started_at",
    "ended_at",
    "channel",
    "status",
    "end_reason",
    "duration_seconds",
    "caller_name",
    "caller_phone",
    "escalation_level",
    "urgency",
    "transferred",
    "voicemail",
    "reviewed_at",
    "estimated_cost_usd",
]
ESCALATION_COLUMNS = [
    "escalation_id",
    "call_id",
    "created_at",
    "level",
    "source",
    "status",
    "reason",
    "after_call",
    "acknowledged_at",
    "seconds_to_acknowledge",
    "resolved_at",
    "caller_name",
    "caller_phone",
]


class ExportRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExportRequest:
    kind: str
    first: dt.date
    last: dt.date
    start: dt.datetime
    end: dt.datetime

    @property
    def filename(self) -> str:
        return f"{self.kind}-{self.first:%Y-%m-%d}-to-{self.last:%Y-%m-%d}.csv"


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ExportRefused("invalid_date", f"{name} must be a date as YYYY-MM-DD.") from None


def export_request(organization: Organization, params: dict[str, str]) -> ExportRequest:
    """The export asked for by the query `params` (kind, since, until: clinic-local dates, both included)."""
    kind = params.get("kind", "calls")
    if kind not in KINDS:
        raise ExportRefused("invalid_kind", "kind must be calls or escalations.")
    first = _date(params.get("since", ""), "since")
    last = _date(params.get("until", ""), "until")
    if last < first:
        raise ExportRefused("invalid_range", "until must not be before since.")
    if (last - first).days + 1 > MAX_EXPORT_DAYS:
        raise ExportRefused(
            "range_too_long", f"Export at most {MAX_EXPORT_DAYS} days at a time; choose a shorter range."
        )
    tz = organization.tz
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return ExportRequest(kind=kind, first=first, last=last, start=start, end=end)


def export_queryset(organization: Organization, request: ExportRequest) -> QuerySet[Any]:
    if request.kind == "calls":
        return Call.objects.filter(
            organization=organization, started_at__gte=request.start, started_at__lt=request.end
        ).order_by("started_at", "pk")
    return (
        Escalation.objects.filter(organization=organization, created_at__gte=request.start, created_at__lt=request.end)
        .select_related("call")
        .order_by("created_at", "pk")
    )


def checked_count(queryset: QuerySet[Any]) -> int:
    """The number of rows, refused above MAX_EXPORT_ROWS (counted up to one past the limit, not the whole table)."""
    count = queryset.order_by()[: MAX_EXPORT_ROWS + 1].count()
    if count > MAX_EXPORT_ROWS:
        raise ExportRefused(
            "too_many_rows", f"The range holds more than {MAX_EXPORT_ROWS:,} rows; choose a shorter range."
        )
    return count


def safe_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: formulas defused, None empty."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _when(value: dt.datetime | None, tz: dt.tzinfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


def _call_row(call: Call, tz: dt.tzinfo) -> list[object]:
    cost = call_cost(call)
    return [
        call.pk,
        _when(call.started_at, tz),
        _when(call.ended_at, tz),
        call.channel,
        call.status,
        call.end_reason,
        call.duration_seconds,
        call.caller_name,
        call.caller_phone,
        call.escalation_level,
        call.urgency,
        "yes" if call.end_reason == Call.EndReason.TRANSFERRED else "no",
        "yes" if isinstance(call.metadata, dict) and "voicemail" in call.metadata else "no",
        _when(call.reviewed_at, tz),
        "" if cost is None else f"{cost:.6f}",
    ]


def _escalation_row(escalation: Escalation, tz: dt.tzinfo) -> list[object]:
    ack = escalation.acknowledged_at
    return [
        escalation.pk,
        escalation.call_id,
        _when(escalation.created_at, tz),
        escalation.level,
        escalation.source,
        escalation.status,
        escalation.reason,
        "yes" if escalation.after_call else "no",
        _when(ack, tz),
        round((ack - escalation.created_at).total_seconds()) if ack else "",
        _when(escalation.resolved_at, tz),
        escalation.call.caller_name,
        escalation.call.caller_phone,
    ]


class _Line:
    """csv.writer's file: hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _batch(lines: Iterator[str], size: int) -> str:
    return "".join(itertools.islice(lines, size))


async def async_chunks(lines: Iterator[str]) -> AsyncIterator[str]:
    """The lines for an ASGI server, a batch at a time: Django would read a plain iterator whole into memory before
    sending it under ASGI. The database work stays on the request's sync thread (thread-sensitive)."""
    while chunk := await sync_to_async(_batch, thread_sensitive=True)(lines, CHUNK):
        yield chunk


def csv_lines(organization: Organization, request: ExportRequest, queryset: QuerySet[Any]) -> Iterator[str]:
    writer = csv.writer(_Line())
    tz = organization.tz
    columns, row = (CALL_COLUMNS, _call_row) if request.kind == "calls" else (ESCALATION_COLUMNS, _escalation_row)
    yield writer.writerow(columns)
    rows: Iterable[Any] = queryset[:MAX_EXPORT_ROWS].iterator(chunk_size=CHUNK)
    for obj in rows:
        yield writer.writerow([safe_cell(value) for value in row(obj, tz)])
