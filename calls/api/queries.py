"""Read queries behind the call endpoints, shaped so the number of queries never depends on the result size."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from calls.models import Call, Escalation, Intake, TranscriptSegment
from organizations.access import scope_for_user

CALLER_TRANSCRIPT_PAGE = 200  # lines per answer; the page asks again from the last seq


def calls_with_summary(queryset: QuerySet[Call]) -> QuerySet[Call]:
    """Annotate what the summary shows: segment count and intake completion as subqueries (one row per call, no
    GROUP BY over the call table), and a non-null duration to order and paginate by (live calls sort as -1)."""
    segment_count = (
        TranscriptSegment.objects.filter(call=OuterRef("pk"))
        .order_by()
        .values("call")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        transcript_segments=Coalesce(Subquery(segment_count, output_field=IntegerField()), Value(0)),
        intake_completed=Exists(Intake.objects.filter(call=OuterRef("pk"), completed=True)),
        duration_sort=Coalesce("duration_seconds", Value(-1)),
    )


def calls_with_detail(queryset: QuerySet[Call]) -> QuerySet[Call]:
    """Summary plus transcript (in conversation order), intake and escalations (oldest first, with who
    acknowledged them)."""
    return (
        calls_with_summary(queryset)
        .select_related("intake")
        .prefetch_related(
            Prefetch(
                "segments", queryset=TranscriptSegment.objects.order_by("position", "seq"), to_attr="ordered_segments"
            ),
            Prefetch(
                "escalations",
                queryset=Escalation.objects.select_related("acknowledged_by").order_by("created_at", "id"),
                to_attr="ordered_escalations",
            ),
        )
    )


def calls_for_user(user: User | AnonymousUser) -> QuerySet[Call]:
    return scope_for_user(Call.objects.all(), user)


def call_detail(call_id: uuid.UUID | str) -> Call:
    """One call with everything the detail shape shows (for callers already allowed to see it)."""
    return calls_with_detail(Call.objects.filter(pk=call_id)).get()


def caller_transcript(call: Call, *, after: int) -> list[TranscriptSegment]:
    """What the caller's own page shows: caller and agent lines after `after` (by seq), never the system notes
    (triage and escalation reasons are for staff)."""
    speakers = [TranscriptSegment.Speaker.CALLER, TranscriptSegment.Speaker.AGENT]
    return list(call.segments.filter(seq__gt=after, speaker__in=speakers).order_by("seq")[:CALLER_TRANSCRIPT_PAGE])
