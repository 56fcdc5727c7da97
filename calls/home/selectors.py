"""What the clinic home page shows, read with a fixed number of aggregate queries whatever the number of calls.

Every figure is for one clinic and one period of its own calendar (today, the last 7 or 30 days, by the clinic's
time zone). The queries use the indexes on (organization, started_at) for calls and (organization, created_at) for
escalations; the number of queries does not grow with the calls (tests count them at two sizes, bench/home.py
times them at 1M calls).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import models
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import RowNumber, TruncDate, TruncHour

from calls.admin import NEVER_CONNECTED
from calls.ledger import TOKEN_FIELDS, estimated_cost
from calls.models import Call, Escalation
from organizations.models import Organization
from organizations.vocabulary import EscalationLevel

OPEN_ESCALATIONS_SHOWN = 10
# A voicemail's recording is kept in the call's metadata (realtime.telephony.services.voicemail_answer).
VOICEMAIL = Q(metadata__has_key="voicemail")


class Period(StrEnum):
    TODAY = "today"
    WEEK = "7d"
    MONTH = "30d"

    @property
    def label(self) -> str:
        return {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}[self.value]

    @property
    def days(self) -> int:
        return {"today": 1, "7d": 7, "30d": 30}[self.value]


DEFAULT_PERIOD = Period.WEEK


@dataclass(frozen=True)
class Window:
    """A period of clinic-local days: [start, end) in the clinic's zone, `first` to `last` day included."""

    period: Period
    first: dt.date
    last: dt.date
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, period: Period, organization: Organization, now: dt.datetime) -> Window:
        tz = organization.tz
        last = now.astimezone(tz).date()
        first = last - dt.timedelta(days=period.days - 1)
        start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return cls(period=period, first=first, last=last, start=start, end=end)


@dataclass(frozen=True)
class LevelStats:
    level: EscalationLevel
    raised: int
    acknowledged: int
    open: int
    median_ack: dt.timedelta | None
    p90_ack: dt.timedelta | None


@dataclass
class HomeStats:
    window: Window
    calls: int = 0
    answered: int = 0
    transferred: int = 0
    voicemail: int = 0
    after_hours: int = 0
    failed: int = 0
    live: int = 0
    never_connected: int = 0  # web sessions started and never connected: not counted anywhere else
    not_reviewed: int = 0
    # (local hour or date, calls, escalated calls) for every hour of today or every day of the period
    buckets: list[tuple[dt.datetime | dt.date, int, int]] = field(default_factory=list)
    levels: list[LevelStats] = field(default_factory=list)
    open_escalations: list[Escalation] = field(default_factory=list)
    open_total: int = 0
    cost: Decimal | None = Decimal(0)  # None: some usage has no price in the table
    priced_calls: int = 0


def _counted_calls(organization: Organization, window: Window) -> QuerySet[Call]:
    return Call.objects.filter(organization=organization, started_at__gte=window.start, started_at__lt=window.end)


def _after_hours(organization: Organization, window: Window) -> Q:
    """Started while the clinic was closed (by its current hours and closures): outside every open interval."""
    intervals = organization.open_intervals(window.first, window.last)
    if not intervals:
        return Q(pk__isnull=False)  # no hours at all: the clinic is always closed (Organization.is_open)
    inside = Q()
    for start, end in intervals:
        inside |= Q(started_at__gte=start, started_at__lt=end)
    return ~inside


def _rank(n: int, q: float) -> int:
    """The nearest rank (calls.ledger.percentile): the smallest value with at least q% of the values at or below."""
    return max(1, math.ceil(q / 100 * n))


def _ack_percentiles(
    acked: QuerySet[Any], counts: dict[str, int], quantiles: tuple[float, ...]
) -> dict[tuple[str, float], dt.timedelta]:
    """The time to acknowledge at each quantile per level, in one query: the database numbers each level's rows by
    time to acknowledge (a window function) and returns only the rows at the wanted ranks."""
    wanted = Q(pk__in=[])
    ranks: dict[tuple[str, int], list[float]] = {}
    for level, n in counts.items():
        for q in quantiles:
            if n:
                ranks.setdefault((level, _rank(n, q)), []).append(q)
                wanted |= Q(level=level, rank=_rank(n, q))
    if not ranks:
        return {}
    numbered = acked.annotate(
        rank=models.Window(RowNumber(), partition_by=[F("level")], order_by=[F("ack").asc(), F("pk").asc()])
    )
    found: dict[tuple[str, float], dt.timedelta] = {}
    for level, rank, ack in numbered.filter(wanted).values_list("level", "rank", "ack"):
        for q in ranks.get((level, rank), []):
            found[(level, q)] = ack
    return found


def home_stats(organization: Organization, *, period: Period, now: dt.datetime) -> HomeStats:
    window = Window.of(period, organization, now)
    stats = HomeStats(window=window)
    tz = organization.tz
    all_calls = _counted_calls(organization, window)
    connected = ~NEVER_CONNECTED
    # One scan of the period's calls: grouped by chart bucket (clinic-local hour today, else day) and by the models
    # the usage was billed under (the price depends on them); the page's totals are the sums of the groups.
    trunc = TruncHour("started_at", tzinfo=tz) if period == Period.TODAY else TruncDate("started_at", tzinfo=tz)
    counters = {
        "never_connected": NEVER_CONNECTED,
        "calls": connected,
        "escalated": connected & Q(escalated=True),
        "answered": connected & Q(status=Call.Status.COMPLETED) & ~VOICEMAIL,
        "transferred": connected & Q(end_reason=Call.EndReason.TRANSFERRED),
        "voicemail": connected & VOICEMAIL,
        "after_hours": connected & _after_hours(organization, window),
        "failed": connected & Q(status__in=[Call.Status.FAILED, Call.Status.ABANDONED]),
        "live": connected & Q(status=Call.Status.IN_PROGRESS),
        "not_reviewed": connected & Q(reviewed_at__isnull=True) & ~Q(status=Call.Status.IN_PROGRESS),
    }
    groups: Any = (
        all_calls.annotate(bucket=trunc)
        .values("bucket", "realtime_model", "transcription_model")
        .annotate(
            **{name: Count("pk", filter=condition) for name, condition in counters.items()},
            **{f"sum_{name}": Sum(name, filter=connected) for name in TOKEN_FIELDS},
        )
        .order_by()
    )
    counted: dict[Any, list[int]] = {}
    for row in groups:
        for name in counters:
            if name != "escalated":
                setattr(stats, name, getattr(stats, name) + row[name])
        slot = counted.setdefault(_bucket_key(row["bucket"], tz, period), [0, 0])  # DST: an hour may come twice
        slot[0] += row["calls"]
        slot[1] += row["escalated"]
        counts = {name: row[f"sum_{name}"] or 0 for name in TOKEN_FIELDS}
        if any(counts.values()):
            cost = estimated_cost(
                counts, realtime_model=row["realtime_model"], transcription_model=row["transcription_model"]
            )
            stats.cost = None if cost is None or stats.cost is None else stats.cost + cost
    stats.priced_calls = stats.calls
    keys: list[Any] = list(range(24)) if period == Period.TODAY else _days(window)
    stats.buckets = [(key, *counted.get(key, [0, 0])) for key in keys]

    # Escalations raised in the period, by level, with the time to acknowledge.
    escalations = Escalation.objects.filter(
        organization=organization, created_at__gte=window.start, created_at__lt=window.end
    )
    by_level = {
        row["level"]: row
        for row in escalations.values("level")
        .annotate(
            raised=Count("pk"),
            acknowledged=Count("pk", filter=Q(acknowledged_at__isnull=False)),
            open=Count("pk", filter=Q(status=Escalation.Status.OPEN)),
        )
        .order_by()
    }
    acked = escalations.filter(acknowledged_at__isnull=False).annotate(
        ack=ExpressionWrapper(F("acknowledged_at") - F("created_at"), output_field=DurationField())
    )
    acked_counts = {level: row["acknowledged"] for level, row in by_level.items()}
    percentiles = _ack_percentiles(acked, acked_counts, (50, 90))
    for level in EscalationLevel:
        row = by_level.get(level.value, {"raised": 0, "acknowledged": 0, "open": 0})
        stats.levels.append(
            LevelStats(
                level=level,
                raised=row["raised"],
                acknowledged=row["acknowledged"],
                open=row["open"],
                median_ack=percentiles.get((level.value, 50)),
                p90_ack=percentiles.get((level.value, 90)),
            )
        )

    # Open escalations of any age, the oldest first (the partial index of open escalations).
    open_escalations = Escalation.objects.filter(organization=organization, status=Escalation.Status.OPEN)
    stats.open_escalations = list(
        open_escalations.select_related("call").order_by("created_at", "pk")[:OPEN_ESCALATIONS_SHOWN]
    )
    stats.open_total = (
        len(stats.open_escalations)
        if len(stats.open_escalations) < OPEN_ESCALATIONS_SHOWN
        else open_escalations.count()
    )

    return stats


def _days(window: Window) -> list[dt.date]:
    return [window.first + dt.timedelta(days=offset) for offset in range(window.period.days)]


def _bucket_key(value: dt.datetime | dt.date, tz: dt.tzinfo, period: Period) -> int | dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(tz).hour if period == Period.TODAY else value.date()
    return value
