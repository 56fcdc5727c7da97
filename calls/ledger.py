"""The call ledger: what a call used (tokens, transcription), what it cost, and how fast the agent answered.

Usage is summed into real columns on `Call` by `calls.services.call_usage_add` (one `response.done` or one
transcription at a time); this module reads those columns: the estimated cost from the price table in settings
(REALTIME_PRICES, overridable by REALTIME_PRICES_JSON), turn-latency percentiles, and a clinic's totals per day.
What each usage field means and where it comes from: docs/facts.md#usage.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from calls.models import Call
from organizations.models import Organization

MILLION = Decimal(1_000_000)
MICRO_DOLLAR = Decimal("0.000001")  # costs are kept to a millionth of a dollar: one audio input token is $0.000032
TURN_LATENCY_KEPT = 500  # per call; a 60-minute call has a few hundred turns

# The ledger columns summed per call and per day (usage_totals, usage_by_day).
TOKEN_FIELDS = (
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "transcription_input_tokens",
    "transcription_output_tokens",
    "transcription_audio_ms",
)


def _int(value: object) -> int:
    """A token count from an upstream event: a non-negative int, anything else 0 (never trust a shape)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def response_usage_counts(usage: Mapping[str, object]) -> dict[str, int]:
    """The ledger increments of one `response.done` `usage` (RealtimeResponseUsage)."""
    inp = usage.get("input_token_details")
    inp = inp if isinstance(inp, dict) else {}
    cached = inp.get("cached_tokens_details")
    cached = cached if isinstance(cached, dict) else {}
    out = usage.get("output_token_details")
    out = out if isinstance(out, dict) else {}
    return {
        "input_text_tokens": _int(inp.get("text_tokens")),
        "input_audio_tokens": _int(inp.get("audio_tokens")),
        "input_cached_tokens": _int(inp.get("cached_tokens")),
        "input_cached_audio_tokens": _int(cached.get("audio_tokens")),
        "output_text_tokens": _int(out.get("text_tokens")),
        "output_audio_tokens": _int(out.get("audio_tokens")),
    }


def transcription_usage_counts(usage: Mapping[str, object]) -> dict[str, int]:
    """The ledger increments of one input transcription's `usage`: `{"type": "tokens", input_tokens,
    output_tokens, …}` or `{"type": "duration", "seconds": float}`."""
    if usage.get("type") == "tokens":
        return {
            "transcription_input_tokens": _int(usage.get("input_tokens")),
            "transcription_output_tokens": _int(usage.get("output_tokens")),
        }
    seconds = usage.get("seconds")
    if usage.get("type") != "duration" or not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return {}
    return {"transcription_audio_ms": round(seconds * 1000)} if math.isfinite(seconds) and seconds > 0 else {}


# --- cost -----------------------------------------------------------------------------------------------------------


def _prices(model: str) -> dict[str, Decimal] | None:
    table = settings.REALTIME_PRICES.get(model)
    if not table:
        return None
    return {key: Decimal(str(value)) for key, value in table.items()}


def estimated_cost(counts: Mapping[str, int], *, realtime_model: str, transcription_model: str) -> Decimal | None:
    """USD for the token counts under the two models' prices, or None when a model that was used has no price.
    Cached tokens are part of the input counts and billed at the cached price instead of the full one."""
    total = Decimal(0)
    cached = counts.get("input_cached_tokens", 0)
    cached_audio = min(counts.get("input_cached_audio_tokens", 0), cached)
    cached_text = cached - cached_audio
    realtime_used = any(
        counts.get(key, 0)
        for key in ("input_text_tokens", "input_audio_tokens", "output_text_tokens", "output_audio_tokens")
    )
    if realtime_used:
        prices = _prices(realtime_model)
        if prices is None:
            return None
        price = lambda key: prices.get(key, Decimal(0))  # noqa: E731 - a local shorthand
        text_in = max(counts.get("input_text_tokens", 0) - cached_text, 0)
        audio_in = max(counts.get("input_audio_tokens", 0) - cached_audio, 0)
        total += (
            text_in * price("text_input")
            + cached_text * price("text_cached_input")
            + audio_in * price("audio_input")
            + cached_audio * price("audio_cached_input")
            + counts.get("output_text_tokens", 0) * price("text_output")
            + counts.get("output_audio_tokens", 0) * price("audio_output")
        ) / MILLION
    tokens_in = counts.get("transcription_input_tokens", 0)
    tokens_out = counts.get("transcription_output_tokens", 0)
    audio_ms = counts.get("transcription_audio_ms", 0)
    if tokens_in or tokens_out or audio_ms:
        prices = _prices(transcription_model)
        if prices is None:
            return None
        total += (tokens_in * prices.get("input", Decimal(0)) + tokens_out * prices.get("output", Decimal(0))) / MILLION
        total += Decimal(audio_ms) / Decimal(60_000) * prices.get("per_minute", Decimal(0))
    return total.quantize(MICRO_DOLLAR)


def call_counts(call: Call) -> dict[str, int]:
    return {name: getattr(call, name) for name in TOKEN_FIELDS}


def call_cost(call: Call) -> Decimal | None:
    return estimated_cost(
        call_counts(call), realtime_model=call.realtime_model, transcription_model=call.transcription_model
    )


def call_usage(call: Call) -> dict[str, int]:
    """The usage shown for a call (GET /api/calls/{id} `usage`, the console)."""
    return {
        "input_text_tokens": call.input_text_tokens,
        "input_audio_tokens": call.input_audio_tokens,
        "input_cached_tokens": call.input_cached_tokens,
        "output_text_tokens": call.output_text_tokens,
        "output_audio_tokens": call.output_audio_tokens,
        "transcription_tokens": call.transcription_input_tokens + call.transcription_output_tokens,
        "transcription_audio_ms": call.transcription_audio_ms,
    }


# --- turn latency ---------------------------------------------------------------------------------------------------


def percentile(values: Iterable[int], q: float) -> int | None:
    """Nearest-rank percentile (the smallest value with at least q% of the values at or below it)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values: Iterable[int]) -> dict[str, int | None]:
    turns = list(values)
    return {"p50": percentile(turns, 50), "p95": percentile(turns, 95), "turns": len(turns)}


# --- per clinic per day ---------------------------------------------------------------------------------------------


@dataclass
class DayTotals:
    organization: Organization
    day: dt.date
    calls: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    cost: Decimal | None = Decimal(0)  # None: some usage of the day has no price
    latencies: list[int] = field(default_factory=list)

    @property
    def input_tokens(self) -> int:
        return self.counts.get("input_text_tokens", 0) + self.counts.get("input_audio_tokens", 0)

    @property
    def output_tokens(self) -> int:
        return self.counts.get("output_text_tokens", 0) + self.counts.get("output_audio_tokens", 0)

    @property
    def transcription_tokens(self) -> int:
        return self.counts.get("transcription_input_tokens", 0) + self.counts.get("transcription_output_tokens", 0)

    @property
    def latency(self) -> dict[str, int | None]:
        return latency_summary(self.latencies)


def usage_by_day(organizations: QuerySet[Organization], *, since: dt.date, until: dt.date) -> list[DayTotals]:
    """Calls, tokens, estimated cost and turn latency per clinic and clinic-local day (calls started from `since`
    to `until`, both included), newest day first. The caller scopes `organizations` (organizations.access).
    One aggregate query per clinic, plus one for the latencies."""
    rows: list[DayTotals] = []
    for organization in organizations.order_by("name"):
        tz = organization.tz
        start = dt.datetime.combine(since, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        calls = Call.objects.filter(organization=organization, started_at__gte=start, started_at__lt=end).annotate(
            day=TruncDate("started_at", tzinfo=tz)
        )
        days: dict[dt.date, DayTotals] = {}
        # Grouped by model too: the price depends on the models a call was billed under.
        grouped = calls.values("day", "realtime_model", "transcription_model").annotate(
            n=Count("id"), **{f"sum_{name}": Sum(name) for name in TOKEN_FIELDS}
        )
        for row in grouped:
            group: dict[str, Any] = dict(row)
            totals = days.setdefault(group["day"], DayTotals(organization=organization, day=group["day"]))
            totals.calls += group["n"]
            counts = {name: group[f"sum_{name}"] or 0 for name in TOKEN_FIELDS}
            for name, value in counts.items():
                totals.counts[name] = totals.counts.get(name, 0) + value
            cost = estimated_cost(
                counts, realtime_model=group["realtime_model"], transcription_model=group["transcription_model"]
            )
            totals.cost = None if cost is None or totals.cost is None else totals.cost + cost
        if days:
            for day, latencies in calls.values_list("day", "turn_latencies_ms"):
                if day in days and isinstance(latencies, list):
                    days[day].latencies += [ms for ms in latencies if isinstance(ms, int)]
        rows += days.values()
    rows.sort(key=lambda row: (-row.day.toordinal(), row.organization.name))
    return rows
