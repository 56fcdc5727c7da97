"""Post-call summaries: a short summary, the reason for the call and whether follow-up is needed, made after the
call from its stored transcript by OpenAI's Responses API with structured output (a strict JSON schema).

The call ends first: `summary_enqueue` writes a pending `CallSummary` in the call-end transaction, and the
notification worker (`manage.py deliver_notifications`) makes it later through `summarize_due`, one lease at a
time, retrying failures with back-off until it gives up (`failed`). Nothing here runs on a request or call thread.

Bounded: at most SUMMARY_TRANSCRIPT_CHARS of transcript are sent (the start and the end of a longer call, with a
note saying how many lines were left out), and the model's answer is clipped to the columns' sizes. What is sent
to OpenAI is the transcript the clinic already sent it during the call; `store=False` asks it not to keep it.
Log lines carry call ids and error classes, never the transcript or the summary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from calls.audit import Action, audit_actor, audit_change
from calls.models import Call, CallSummary, TranscriptSegment

if TYPE_CHECKING:
    from openai.types.responses import ResponseInputParam, ResponseTextConfigParam

logger = logging.getLogger(__name__)

# Late words: a caller's last utterance may be transcribed after the hang-up (the caller grace of calls.models), so
# the summary waits this long after the end before reading the transcript.
SETTLE_SECONDS = 10
# Delay before retry n (after failed attempt n); one first attempt plus these retries, then the row is `failed`.
BACKOFF_SECONDS = (30, 120, 600, 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
# A claimed row is invisible to other workers this long; a worker that dies mid-request is retried after it.
CLAIM_LEASE = dt.timedelta(minutes=5)
MAX_OUTPUT_TOKENS = 1_000  # the three short fields, and room for a reasoning model's thinking
MAX_SEGMENTS = 5_000  # read at most this many lines of one call (a call is bounded by its maximum length anyway)
SUMMARY_CHARS = 1_000
REASON_CHARS = 300
NO_CONVERSATION = "No conversation was recorded."
SPEAKER_LABEL: dict[str, str] = {
    TranscriptSegment.Speaker.CALLER: "Caller",
    TranscriptSegment.Speaker.AGENT: "Receptionist",
    TranscriptSegment.Speaker.SYSTEM: "Note",
}

INSTRUCTIONS = (
    "You summarize a finished phone call between a caller and a medical clinic's AI receptionist, for the clinic's "
    "staff. Use only what the transcript says; do not invent names, dates or diagnoses. "
    "summary: at most two short sentences on what happened in the call. "
    "reason_for_call: the caller's reason in a few words (empty string if the caller never said). "
    "follow_up_needed: true when someone at the clinic must act (call back, book, answer a question left open, an "
    "emergency or urgent symptom, a message to pass on); false otherwise. "
    "Lines starting with 'Note:' are the system's notes (escalations), not words anyone said."
)

# Structured output: strict mode needs every property required and no others (OpenAI structured-outputs guide).
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "At most two short sentences on what happened in the call."},
        "reason_for_call": {"type": "string", "description": "The caller's reason for calling, in a few words."},
        "follow_up_needed": {"type": "boolean", "description": "Whether clinic staff must act after this call."},
    },
    "required": ["summary", "reason_for_call", "follow_up_needed"],
    "additionalProperties": False,
}
TEXT_FORMAT: ResponseTextConfigParam = {
    "format": {"type": "json_schema", "name": "call_summary", "schema": SUMMARY_SCHEMA, "strict": True}
}


class SummaryError(Exception):
    """One attempt failed. `code` is stored (an error class or HTTP status, never a body); `permanent` gives up at
    once (a request the API refuses will be refused again); `retry_after` is the server's own wait, if it said."""

    def __init__(self, code: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class SummaryResult:
    summary: str
    reason_for_call: str
    follow_up_needed: bool
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


# --- The queue (inside the call-end transaction) ----------------------------------------------------------------------


def summary_enqueue(*, call: Call, now: dt.datetime | None = None) -> None:
    """Write the pending summary of an ended call in the caller's transaction: one INSERT, and a row that is already
    there (a backfill raced the end) is left as it is rather than failing the call's end."""
    due = (now or timezone.now()) + dt.timedelta(seconds=SETTLE_SECONDS)
    CallSummary.objects.bulk_create([CallSummary(call=call, next_attempt_at=due)], ignore_conflicts=True)


def summaries_requeue(*, call_ids: list[uuid.UUID] | None = None, redo_done: bool = False) -> int:
    """Make summaries due now (backfill, `summarize_calls`): ended calls without one get a pending row, failed ones
    start over, and with `redo_done` finished ones too. Returns how many rows were made due."""
    now = timezone.now()
    ended = Call.objects.exclude(status=Call.Status.IN_PROGRESS)
    if call_ids is not None:
        ended = ended.filter(pk__in=call_ids)
    missing = ended.filter(summary__isnull=True).values_list("pk", flat=True)
    created = CallSummary.objects.bulk_create(
        [CallSummary(call_id=pk, next_attempt_at=now) for pk in missing.iterator()], ignore_conflicts=True
    )
    again = [CallSummary.Status.FAILED, *([CallSummary.Status.DONE] if redo_done else [])]
    reset = CallSummary.objects.filter(call__in=ended, status__in=again).update(
        status=CallSummary.Status.PENDING, attempts=0, next_attempt_at=now, last_error=""
    )
    return len(created) + reset


# --- The transcript sent -------------------------------------------------------------------------------------------


def transcript_text(call: Call, *, limit: int | None = None) -> str:
    """The call's transcript as "Speaker: words" lines in conversation order, at most `limit` characters: a longer
    one keeps its start and its end and says in between how many lines were left out."""
    limit = limit or settings.SUMMARY_TRANSCRIPT_CHARS
    rows = (
        TranscriptSegment.objects.filter(call=call)
        .order_by("position", "seq")
        .values_list("speaker", "text")[:MAX_SEGMENTS]
    )
    lines = [f"{SPEAKER_LABEL.get(speaker, 'Note')}: {' '.join(text.split())}" for speaker, text in rows]
    if sum(len(line) + 1 for line in lines) <= limit:
        return "\n".join(lines)
    budget = limit - 80  # room for the note
    head: list[str] = []
    tail: list[str] = []
    used = 0
    # A third for the start (who called, why), two thirds for the end (how it was left).
    for line in lines:
        if used + len(line) + 1 > budget // 3:
            break
        head.append(line)
        used += len(line) + 1
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > budget:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    if not head and not tail:  # one enormous line
        return lines[0][:budget] + "\n[… the rest of the transcript was left out: too long …]"
    omitted = len(lines) - len(head) - len(tail)
    return "\n".join([*head, f"[… {omitted} lines of the transcript left out here: too long to send …]", *tail])


def _has_conversation(call: Call) -> bool:
    spoken = [TranscriptSegment.Speaker.CALLER, TranscriptSegment.Speaker.AGENT]
    return TranscriptSegment.objects.filter(call=call, speaker__in=spoken).exists()


# --- Asking OpenAI -------------------------------------------------------------------------------------------------


def _client() -> openai.OpenAI:
    # max_retries=0: the worker retries with its own back-off, on its own schedule, without holding the lease.
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.SUMMARY_TIMEOUT_SECONDS,
        max_retries=0,
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def parse_summary(response: Any, *, model: str) -> SummaryResult:
    """Read a Responses API answer (`openai.types.responses.Response`): a completed response whose output message
    holds JSON text matching SUMMARY_SCHEMA. A refusal or an unfinished response is a SummaryError."""
    if getattr(response, "status", None) != "completed":
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        raise SummaryError(f"response_{getattr(response, 'status', 'unknown')}" + (f":{reason}" if reason else ""))
    for item in response.output:
        if getattr(item, "type", None) == "message":
            for part in item.content:
                if getattr(part, "type", None) == "refusal":
                    raise SummaryError("refusal", permanent=True)
    text = response.output_text
    try:
        data = json.loads(text)
    except ValueError:
        raise SummaryError("invalid_json") from None
    if not isinstance(data, dict):
        raise SummaryError("invalid_shape")
    summary, reason, follow_up = data.get("summary"), data.get("reason_for_call"), data.get("follow_up_needed")
    if not isinstance(summary, str) or not isinstance(reason, str) or not isinstance(follow_up, bool):
        raise SummaryError("invalid_shape")
    usage = getattr(response, "usage", None)
    return SummaryResult(
        summary=" ".join(summary.split())[:SUMMARY_CHARS],
        reason_for_call=" ".join(reason.split())[:REASON_CHARS],
        follow_up_needed=follow_up,
        model=str(getattr(response, "model", "") or model)[:64],
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
    )


def _input(transcript: str) -> ResponseInputParam:
    return [{"role": "user", "content": f"Transcript of the call:\n{transcript}"}]


def summarize_transcript(transcript: str, *, model: str | None = None) -> SummaryResult:
    """One Responses API request for one transcript; raises SummaryError."""
    model = model or settings.SUMMARY_MODEL
    try:
        response = _client().responses.create(
            model=model,
            instructions=INSTRUCTIONS,
            input=_input(transcript),
            text=TEXT_FORMAT,
            max_output_tokens=MAX_OUTPUT_TOKENS,
            store=False,
        )
    except openai.APIStatusError as exc:
        status = exc.status_code
        # A request refused as such (bad model name, bad schema) will be refused again; the rest may pass later.
        permanent = status in (400, 404, 422)
        retry_after = _retry_after(exc) if status == 429 else None
        raise SummaryError(f"http_{status}", permanent=permanent, retry_after=retry_after) from None
    except openai.OpenAIError as exc:  # time-outs, refused connections, a body that is not JSON: try again later
        raise SummaryError(type(exc).__name__) from None
    return parse_summary(response, model=model)


# --- The worker ----------------------------------------------------------------------------------------------------


def _claim(*, limit: int, now: dt.datetime) -> list[CallSummary]:
    """Lease due pending rows: attempts += 1 and hide them for CLAIM_LEASE. Concurrent workers skip locked rows."""
    with transaction.atomic():
        queryset = CallSummary.objects.filter(status=CallSummary.Status.PENDING, next_attempt_at__lte=now)
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        else:  # SQLite: the IMMEDIATE transaction already serialises writers
            queryset = queryset.select_for_update()
        claimed = list(queryset.order_by("next_attempt_at")[:limit])
        for row in claimed:
            row.attempts += 1
            row.next_attempt_at = now + CLAIM_LEASE
            CallSummary.objects.filter(pk=row.pk).update(attempts=row.attempts, next_attempt_at=row.next_attempt_at)
    return claimed


def _store(row: CallSummary, result: SummaryResult, now: dt.datetime) -> None:
    with transaction.atomic():
        locked = CallSummary.objects.select_for_update().select_related("call").get(pk=row.pk)
        locked.status = CallSummary.Status.DONE
        locked.summary = result.summary
        locked.reason_for_call = result.reason_for_call
        locked.follow_up_needed = result.follow_up_needed
        locked.model = result.model
        locked.input_tokens = result.input_tokens
        locked.output_tokens = result.output_tokens
        locked.completed_at = now
        locked.last_error = ""
        fields = [
            "status",
            "summary",
            "reason_for_call",
            "follow_up_needed",
            "model",
            "input_tokens",
            "output_tokens",
            "completed_at",
            "last_error",
        ]
        locked.save(update_fields=fields)
        audit_change(locked, action=Action.CHANGE, fields=fields)


def _record_failure(row: CallSummary, error: SummaryError, now: dt.datetime) -> str:
    if error.permanent or row.attempts >= MAX_ATTEMPTS:
        CallSummary.objects.filter(pk=row.pk).update(status=CallSummary.Status.FAILED, last_error=error.code[:200])
        logger.warning("call summary gave up call=%s attempts=%s error=%s", row.pk, row.attempts, error.code)
        return CallSummary.Status.FAILED
    delay = float(BACKOFF_SECONDS[min(row.attempts, len(BACKOFF_SECONDS)) - 1])
    if error.retry_after is not None:
        delay = max(delay, min(error.retry_after, 3600.0))
    CallSummary.objects.filter(pk=row.pk).update(
        next_attempt_at=now + dt.timedelta(seconds=delay), last_error=error.code[:200]
    )
    logger.info("call summary retry call=%s in=%ss error=%s", row.pk, int(delay), error.code)
    return CallSummary.Status.PENDING


def summarize_one(row: CallSummary, *, now: dt.datetime | None = None) -> str:
    """One attempt for a claimed row; returns its status afterwards."""
    now = now or timezone.now()
    call = Call.objects.get(pk=row.pk)
    try:
        if not _has_conversation(call):
            # Nothing was said (a call that never connected): nothing to ask a model about.
            result = SummaryResult(summary=NO_CONVERSATION, reason_for_call="", follow_up_needed=False, model="")
        else:
            result = summarize_transcript(transcript_text(call))
    except SummaryError as exc:
        return _record_failure(row, exc, now)
    _store(row, result, now)
    return CallSummary.Status.DONE


def summarize_due(*, limit: int = 1, now: dt.datetime | None = None) -> dict[str, int]:
    """One worker pass: summarize up to `limit` due calls. Without an OpenAI key nothing is attempted (rows stay
    pending until one is configured). `now` lets tests step through the back-off."""
    counts: dict[str, int] = {CallSummary.Status.DONE: 0, CallSummary.Status.PENDING: 0, CallSummary.Status.FAILED: 0}
    if not settings.OPENAI_API_KEY:
        return counts
    now = now or timezone.now()
    with audit_actor("openai-summary"):
        for row in _claim(limit=limit, now=now):
            # A call deleted since (retention, an operator) took its summary with it.
            with contextlib.suppress(Call.DoesNotExist, CallSummary.DoesNotExist):
                counts[summarize_one(row, now=now)] += 1
    return counts
