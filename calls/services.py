"""Call workflows: start, transcript, intake, end, escalations.

Every transport (REST API, browser sideband, phone bridge, console) goes through these functions, so the rules
live in one place. Writes lock the call row they change and record each change in the audit trail in the same
transaction (calls.audit; the actor is whoever the entry point named); side effects run after commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max, Model
from django.utils import timezone

from calls import ledger, paging
from calls.audit import Action, audit_change, audit_record, audit_segments_created
from calls.intake import IntakeResult, validate_intake
from calls.models import (
    SEGMENT_SOURCE_KEY,
    SOURCE_FORWARDED,
    Call,
    Escalation,
    Intake,
    TranscriptSegment,
    WebhookReceipt,
)
from calls.notifications import EVENT_CREATED, EVENT_UPDATED, notifications_enqueue, schedule_pages
from calls.summaries import summary_enqueue
from organizations.models import OnCallPerson, Organization
from organizations.vocabulary import Urgency, highest_urgency

logger = logging.getLogger(__name__)


class ForwardingRefused(Exception):
    """The browser reported what only the server's own connection may (agent lines, tool calls, intake, usage);
    nothing of the request was stored. `status` and `code` are the API's answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def browser_agent_side_check(call: Call) -> None:
    """Raise ForwardingRefused unless the browser may report the agent's side of `call`: its clinic chose event
    forwarding (organizations.Organization.event_forwarding) and the server is not attached to the call."""
    if not call.organization.event_forwarding:
        raise ForwardingRefused(
            403,
            "event_forwarding_off",
            "This clinic's server records the agent's side of the call (agent lines, tool calls, intake); send only "
            "the caller's own lines.",
        )
    if call.openai_call_id:
        raise ForwardingRefused(
            409,
            "server_attached",
            "The server is attached to this call and records the agent's side itself; send only the caller's lines.",
        )


def caller_report_check(*, call: Call, segments: list[SegmentInput], intake: dict | None) -> list[SegmentInput]:
    """What a caller-side request (the browser, with the call token) may add to the record at the call's end: its
    own lines, stamped inside the call (a browser clock or a forger cannot date them before the call started or
    into the future) and marked as reported by the browser. Agent lines and the intake only where the clinic chose
    event forwarding (browser_agent_side_check); system lines never. Raises ForwardingRefused."""
    if any(segment.speaker == TranscriptSegment.Speaker.SYSTEM for segment in segments):
        raise ForwardingRefused(400, "caller_lines_only", "System lines are written by the server only.")
    if intake is not None or any(segment.speaker != TranscriptSegment.Speaker.CALLER for segment in segments):
        browser_agent_side_check(call)
    now = timezone.now()
    return [
        replace(
            segment,
            occurred_at=min(max(segment.occurred_at or now, call.started_at), now),
            metadata={**(segment.metadata or {}), SEGMENT_SOURCE_KEY: SOURCE_FORWARDED},
        )
        for segment in segments
    ]


@dataclass(frozen=True)
class ForwardedMark:
    """What a call held before a browser's report was applied (forwarded_records_before)."""

    escalations: frozenset[uuid.UUID]
    intake_updated_at: dt.datetime | None


def forwarded_records_before(call: Call) -> ForwardedMark:
    return ForwardedMark(
        escalations=frozenset(Escalation.objects.filter(call=call).values_list("pk", flat=True)),
        intake_updated_at=Intake.objects.filter(call=call).values_list("updated_at", flat=True).first(),
    )


def forwarded_records_mark(*, call: Call, before: ForwardedMark) -> None:
    """Mark `forwarded` what a browser's report (forwarded events, or the browser's end of the call) wrote on `call`
    since `before`: the escalations it raised, and the intake when it created or changed it. Staff can then tell
    them from what the server's own sideband or bridge saw. Runs in the transaction of the write it follows."""
    Escalation.objects.filter(call=call).exclude(pk__in=before.escalations).update(forwarded=True)
    intakes = Intake.objects.filter(call=call)
    if before.intake_updated_at is not None:  # it existed: marked only if this report changed it
        intakes = intakes.exclude(updated_at=before.intake_updated_at)
    intakes.update(forwarded=True)


class IntakeInvalid(Exception):
    def __init__(self, result: IntakeResult) -> None:
        super().__init__("intake failed validation")
        self.result = result


@dataclass(frozen=True)
class SegmentInput:
    speaker: str
    text: str
    occurred_at: dt.datetime | None = None
    item_id: str = ""
    metadata: dict | None = None
    position: int | None = None  # place in the conversation; None: after everything stored (arrival order)
    heard_ms: int | None = None  # an agent line the caller interrupted after this many milliseconds


# Call.metadata key of the widget's free-form metadata (POST /api/call/start): a namespace of its own, so a caller can
# never set what the server keeps beside it (pipeline state, Twilio ids, staff actions).
CLIENT_METADATA_KEY = "client"


def call_start(
    *,
    organization: Organization,
    channel: str,
    caller_name: str = "",
    caller_phone: str = "",
    metadata: dict | None = None,
    client_metadata: dict | None = None,
    twilio_call_sid: str | None = None,
    openai_call_id: str | None = None,
    started_at: dt.datetime | None = None,
    call_id: uuid.UUID | None = None,
) -> tuple[Call, str]:
    """Create a live call and return it with its caller-side token (shown once, stored hashed). `metadata` is the
    server's; `client_metadata` (caller input) is kept under CLIENT_METADATA_KEY. `call_id` fixes the id (demo data);
    otherwise a new one is drawn."""
    call = Call(
        id=call_id or uuid.uuid4(),
        organization=organization,
        channel=channel,
        caller_name=caller_name,
        caller_phone=caller_phone,
        metadata={**(metadata or {}), **({CLIENT_METADATA_KEY: client_metadata} if client_metadata else {})},
        twilio_call_sid=twilio_call_sid,
        openai_call_id=openai_call_id,
        started_at=started_at or timezone.now(),
    )
    token = call.issue_token()
    with transaction.atomic():
        call.save(force_insert=True)
        audit_change(call, action=Action.CREATE)
    logger.info("call started channel=%s organization=%s call=%s", channel, organization.pk, call.pk)
    return call, token


def _lock(call: Call) -> Call:
    return Call.objects.select_for_update().get(pk=call.pk)


def _save(instance: Model, fields: list[str]) -> None:
    """Save the changed fields of a locked row and record the change (inside the caller's transaction)."""
    instance.save(update_fields=fields)
    audit_change(instance, action=Action.CHANGE, fields=fields)


def _append_locked(call: Call, segments: Iterable[SegmentInput]) -> list[TranscriptSegment]:
    """Append segments to a locked call, skipping ones whose upstream item id is already stored."""
    incoming = list(segments)
    item_ids = {segment.item_id for segment in incoming if segment.item_id}
    known = (
        set(TranscriptSegment.objects.filter(call=call, item_id__in=item_ids).values_list("item_id", flat=True))
        if item_ids
        else set()
    )
    tops = TranscriptSegment.objects.filter(call=call).aggregate(seq=Max("seq"), position=Max("position"))
    next_seq = (tops["seq"] or 0) + 1
    last_position = tops["position"] or 0  # a segment of unknown place goes after everything stored
    created = []
    now = timezone.now()
    for segment in incoming:
        if segment.item_id and segment.item_id in known:
            continue
        if segment.item_id:
            known.add(segment.item_id)
        position = last_position if segment.position is None else segment.position
        last_position = max(last_position, position)
        created.append(
            TranscriptSegment(
                call=call,
                seq=next_seq,
                position=position,
                speaker=segment.speaker,
                text=segment.text,
                occurred_at=segment.occurred_at or now,
                item_id=segment.item_id,
                interrupted=segment.heard_ms is not None,
                heard_ms=segment.heard_ms,
                metadata=segment.metadata or {},
            )
        )
        next_seq += 1
    TranscriptSegment.objects.bulk_create(created)
    audit_segments_created(created)
    if created:  # the reaper (calls/reaper.py) ends calls whose activity stopped; the row is already locked
        Call.objects.filter(pk=call.pk).update(last_activity_at=now)
    return created


def transcript_segments_append(*, call: Call, segments: Iterable[SegmentInput]) -> list[TranscriptSegment]:
    """Persist segments now (not at call end). Idempotent by upstream item id; returns the newly stored ones."""
    with transaction.atomic():
        locked = _lock(call)
        return _append_locked(locked, segments)


def transcript_segment_append(
    *,
    call: Call,
    speaker: str,
    text: str,
    item_id: str = "",
    occurred_at: dt.datetime | None = None,
    metadata: dict | None = None,
    position: int | None = None,
    heard_ms: int | None = None,
) -> TranscriptSegment | None:
    """Store one segment; None when its item id was already stored (a redelivered event)."""
    segment = SegmentInput(
        speaker=speaker,
        text=text,
        item_id=item_id,
        occurred_at=occurred_at,
        metadata=metadata,
        position=position,
        heard_ms=heard_ms,
    )
    stored = transcript_segments_append(call=call, segments=[segment])
    return stored[0] if stored else None


def transcript_segment_interrupt(*, call: Call, item_id: str, heard_ms: int) -> bool:
    """The caller spoke over an agent line and heard only its first `heard_ms` milliseconds (the upstream item
    was truncated): mark the stored segment. False when no segment of that item is stored yet."""
    with transaction.atomic():
        segment = (
            TranscriptSegment.objects.select_for_update()
            .filter(call=call, item_id=item_id, speaker=TranscriptSegment.Speaker.AGENT)
            .first()
            if item_id
            else None
        )
        if segment is None:
            return False
        segment.call = call  # the audit row names the call's clinic
        if segment.interrupted and segment.heard_ms is not None and segment.heard_ms <= heard_ms:
            return True  # a redelivered truncation
        segment.interrupted, segment.heard_ms = True, max(0, heard_ms)
        _save(segment, ["interrupted", "heard_ms"])
    return True


def transcript_position_top(*, call: Call) -> int:
    """The highest conversation position stored for the call (0: none): where a restarted pipeline goes on."""
    return TranscriptSegment.objects.filter(call=call).aggregate(top=Max("position"))["top"] or 0


RESPONSE_FAILURES_KEY = "response_failures"


def call_response_failure_record(*, call: Call, status: str, code: str) -> Call:
    """Count one upstream response that ended `failed` or `incomplete` on the call (bounded: a count per status and
    the last code, in `metadata["response_failures"]`), so staff and operators see that the agent went silent."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().only("id", "organization_id", "metadata").get(pk=call.pk)
        failures = dict((locked.metadata or {}).get(RESPONSE_FAILURES_KEY) or {})
        failures[status] = int(failures.get(status) or 0) + 1
        failures["last_code"] = code[:64]
        locked.metadata = {**(locked.metadata or {}), RESPONSE_FAILURES_KEY: failures}
        _save(locked, ["metadata"])
    call.metadata = locked.metadata
    return call


def intake_store(*, call: Call, data: dict) -> Intake:
    """Validate against the clinic's intake fields and store (merging with what was stored before).

    Raises IntakeInvalid with field errors; nothing is written then.
    """
    fields = list(call.organization.intake_fields.all())
    with transaction.atomic():
        locked = _lock(call)
        result = _validate_merged(locked, fields, data)
        intake = _save_intake(locked, result)
        _save(locked, ["urgency"])
        return intake


def _validate_merged(call: Call, fields: list, data: object) -> IntakeResult:
    """Validate new intake data merged over what the call already has; raise IntakeInvalid on errors."""
    if isinstance(data, dict):
        existing = Intake.objects.filter(call=call).values_list("data", flat=True).first() or {}
        data = {**existing, **data}
    result = validate_intake(fields, data)
    if not result.ok:
        raise IntakeInvalid(result)
    return result


def _save_intake(call: Call, result: IntakeResult) -> Intake:
    """Store a validated intake; its urgency becomes the call's (the caller saves the call)."""
    urgency = result.data.get("urgency", "")
    urgency = urgency if urgency in Urgency.values else ""
    values = {"data": result.data, "urgency": urgency, "completed": result.complete}
    intake, created = Intake.objects.update_or_create(call=call, defaults=values)
    audit_change(intake, action=Action.CREATE if created else Action.CHANGE, fields=[] if created else list(values))
    if urgency:
        call.urgency = highest_urgency(urgency, call.escalation_level)
    return intake


# The status an end reason leaves the call in, unless the caller of call_end says otherwise; anything else completes.
END_STATUS: dict[str, str] = {
    Call.EndReason.ERROR: Call.Status.FAILED,
    Call.EndReason.INTERRUPTED: Call.Status.ABANDONED,
}


def call_end(
    *,
    call: Call,
    reason: str = Call.EndReason.CALLER_HANGUP,
    transcript: Iterable[SegmentInput] = (),
    intake: dict | None = None,
    ended_at: dt.datetime | None = None,
    status: str | None = None,
    duration_seconds: int | None = None,
) -> Call:
    """Finalize a call: the one way any call ends (API, sideband, bridge, Twilio webhooks, reaper). Ending an ended
    call changes nothing and returns it as it is (idempotent).

    `status` defaults from the reason (END_STATUS); a phone caller who hung up before being connected is
    `abandoned` with reason caller_hangup. `duration_seconds` is the carrier's own figure when it has one (Twilio's
    is authoritative); otherwise the time from start to `ended_at`."""
    fields = list(call.organization.intake_fields.all()) if intake is not None else []
    with transaction.atomic():
        locked = _lock(call)
        if locked.is_ended:
            return locked
        # Validate before writing anything: an invalid intake leaves the call untouched.
        result = _validate_merged(locked, fields, intake) if intake is not None else None
        _append_locked(locked, transcript)
        if result is not None:
            _save_intake(locked, result)
        end = max(ended_at or timezone.now(), locked.started_at)
        locked.status = status or END_STATUS.get(reason, Call.Status.COMPLETED)
        locked.end_reason = reason
        locked.ended_at = end
        if duration_seconds is None:
            duration_seconds = int((end - locked.started_at).total_seconds())
        locked.duration_seconds = duration_seconds
        _save(locked, ["status", "end_reason", "ended_at", "duration_seconds", "urgency"])
        summary_enqueue(call=locked, now=end)  # made later by the notification worker (calls.summaries)
    logger.info("call ended reason=%s status=%s call=%s", reason, locked.status, locked.pk)
    return locked


def call_usage_add(*, call: Call, usage: dict | None = None, turn_latency_ms: int | None = None) -> Call:
    """Add one response's usage (a `response.done` event's `usage`, cancelled responses included: they are
    billed) to the call's ledger and count the response; `turn_latency_ms` is the turn this response answered
    (end of the caller's speech to the agent's first audio), measured by the transport. Only integer counts are
    summed; anything else in `usage` is ignored. Returns `call` with its ledger brought up to date."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().only("id", "organization_id", *_LEDGER_FIELDS).get(pk=call.pk)
        fields: list[str] = []
        if usage is not None:
            totals = dict(locked.usage or {})
            for key in ("input_tokens", "output_tokens", "total_tokens"):
                value = usage.get(key)
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
            totals["responses"] = totals.get("responses", 0) + 1
            locked.usage = totals
            fields.append("usage")
            counted = _ledger_add(locked, ledger.response_usage_counts(usage))
            fields += counted
            if counted and not locked.realtime_model:
                locked.realtime_model = settings.REALTIME_MODEL[:64]
                fields.append("realtime_model")
        kept = locked.turn_latencies_ms if isinstance(locked.turn_latencies_ms, list) else []
        if turn_latency_ms is not None and turn_latency_ms >= 0 and len(kept) < ledger.TURN_LATENCY_KEPT:
            locked.turn_latencies_ms = [*kept, int(turn_latency_ms)]
            fields.append("turn_latencies_ms")
        if fields:
            _save(locked, fields)
    _copy_ledger(locked, call)
    return call


def call_transcription_usage_add(*, call: Call, usage: dict) -> Call:
    """Add one caller transcription's usage (`conversation.item.input_audio_transcription.completed` `usage`:
    tokens or audio seconds) to the call's ledger. Returns `call` with its ledger brought up to date."""
    counts = ledger.transcription_usage_counts(usage)
    if not any(counts.values()):
        return call
    with transaction.atomic():
        locked = Call.objects.select_for_update().only("id", "organization_id", *_LEDGER_FIELDS).get(pk=call.pk)
        fields = _ledger_add(locked, counts)
        if not locked.transcription_model:
            locked.transcription_model = settings.REALTIME_TRANSCRIPTION_MODEL[:64]
            fields.append("transcription_model")
        _save(locked, fields)
    _copy_ledger(locked, call)
    return call


_LEDGER_FIELDS = ("usage", *ledger.TOKEN_FIELDS, "realtime_model", "transcription_model", "turn_latencies_ms")


def _ledger_add(call: Call, counts: dict[str, int]) -> list[str]:
    changed = [name for name, value in counts.items() if value]
    for name in changed:
        setattr(call, name, getattr(call, name) + counts[name])
    return changed


def _copy_ledger(source: Call, target: Call) -> None:
    if source is not target:
        for name in _LEDGER_FIELDS:
            setattr(target, name, getattr(source, name))


UPSTREAM_ERRORS_KEPT = 8


def call_upstream_error_record(*, call: Call, event: str, code: str) -> Call:
    """Remember on the call that the voice service refused one of our client events (e.g. `session.update`), so
    staff can see why a call failed or ran unconfigured. Codes and event types only, never message text (it may
    quote what we sent). The last few are kept in `metadata["upstream_errors"]`."""
    with transaction.atomic():
        locked = _lock(call)
        errors = list(locked.metadata.get("upstream_errors", []))
        errors.append({"event": event[:64], "code": code[:64], "at": timezone.now().isoformat()})
        locked.metadata["upstream_errors"] = errors[-UPSTREAM_ERRORS_KEPT:]
        _save(locked, ["metadata"])
    call.metadata = locked.metadata
    return call


def call_mark_reviewed(*, call: Call, user: User) -> Call:
    with transaction.atomic():
        locked = _lock(call)
        if locked.reviewed_at is None:
            locked.reviewed_by = user
            locked.reviewed_at = timezone.now()
            _save(locked, ["reviewed_by", "reviewed_at"])
    return locked


def escalation_create(
    *,
    call: Call,
    level: str,
    source: str,
    reason: str = "",
    evidence: str = "",
    created_by: User | None = None,
    triage: dict | None = None,
    after_call: bool = False,
    created_at: dt.datetime | None = None,
) -> tuple[Escalation, bool]:
    """Record an escalation and mark the call escalated. A second trigger of the same level on the same call
    (while the first is not resolved) returns the existing escalation instead of multiplying alerts.
    `created_at` backdates it (demo history); it is otherwise the time of the call to this function."""
    with transaction.atomic():
        locked = _lock(call)
        existing = (
            Escalation.objects.filter(call=locked, level=level)
            .exclude(status=Escalation.Status.RESOLVED)
            .order_by("created_at")
            .first()
        )
        if existing is not None:
            return existing, False
        escalation = Escalation.objects.create(
            call=locked,
            organization_id=locked.organization_id,
            level=level,
            source=source,
            reason=reason[:300],
            evidence=evidence,
            created_by=created_by,
            triage=triage or {},
            after_call=after_call,
        )
        if created_at is not None:  # auto_now_add ignores a value given on insert, not on a later save
            escalation.created_at = created_at
            escalation.save(update_fields=["created_at"])
        audit_change(escalation, action=Action.CREATE)
        current = Escalation.SEVERITY.get(locked.escalation_level, 0) if locked.escalation_level else 0
        if Escalation.SEVERITY[level] > current:
            locked.escalation_level = level
        locked.escalated = True
        locked.urgency = highest_urgency(locked.urgency, locked.escalation_level)
        _save(locked, ["escalated", "escalation_level", "urgency"])
        # Outbox rows commit (or roll back) with the escalation; delivery starts after commit, off this thread.
        has_webhook = Organization.objects.filter(pk=locked.organization_id).exclude(webhook_url="").exists()
        notifications_enqueue(escalation=escalation, event=EVENT_CREATED, webhook=has_webhook)
        # On-call pages are outbox rows too (none for backdated demo history); sent after commit, off this thread.
        pages = [] if created_at is not None else paging.paging_start(escalation=escalation)
        page_ids = [page.pk for page in pages]
        if page_ids:
            transaction.on_commit(lambda: schedule_pages(page_ids))
    logger.info("escalation created level=%s source=%s call=%s", level, source, call.pk)
    return escalation, True


def escalation_acknowledge(
    *, escalation: Escalation, user: User | None = None, person: OnCallPerson | None = None
) -> Escalation:
    """Open → acknowledged, recording who (a staff user, or an on-call person who replied ACK to a page) and when;
    paging stops. Acknowledging again changes nothing."""
    if (user is None) == (person is None):
        raise ValueError("acknowledged by a user or an on-call person")
    with transaction.atomic():
        locked = Escalation.objects.select_for_update().get(pk=escalation.pk)
        if locked.status == Escalation.Status.OPEN:
            locked.status = Escalation.Status.ACKNOWLEDGED
            locked.acknowledged_by = user
            locked.acknowledged_by_person = person
            locked.acknowledged_at = timezone.now()
            _save(locked, ["status", "acknowledged_by", "acknowledged_by_person", "acknowledged_at"])
            paging.paging_stop(escalation=locked)
            notifications_enqueue(escalation=locked, event=EVENT_UPDATED, webhook=False)
    return locked


def escalation_acknowledge_by_sms(*, from_number: str, to_number: str, body: str) -> list[Escalation]:
    """An SMS reply to a page: `ACK` from a number we paged (from our number `to_number`) acknowledges the open
    escalations it was paged for, as that on-call person. Anything else, or an unknown number, changes nothing."""
    if body.strip().strip(".!").upper() not in {"ACK", "ACKNOWLEDGE", "OK ACK"}:
        return []
    acknowledged: list[Escalation] = []
    seen: set[object] = set()
    for page in paging.pages_paged_to(from_number=from_number, to_number=to_number):
        if page.escalation_id in seen or page.person is None:
            continue
        seen.add(page.escalation_id)
        escalation = escalation_acknowledge(escalation=page.escalation, person=page.person)
        if escalation.acknowledged_by_person_id == page.person.pk:
            acknowledged.append(escalation)
    logger.info("sms acknowledgement escalations=%s", len(acknowledged))
    return acknowledged


def escalation_resolve(*, escalation: Escalation, user: User, note: str = "") -> Escalation:
    """→ resolved, recording who and when (and acknowledging it if nobody had). Resolving again changes nothing."""
    with transaction.atomic():
        locked = Escalation.objects.select_for_update().get(pk=escalation.pk)
        _resolve_locked(locked, user=user, note=note)
    return locked


def _resolve_locked(locked: Escalation, *, user: User, note: str) -> bool:
    if locked.status == Escalation.Status.RESOLVED:
        return False
    now = timezone.now()
    if locked.acknowledged_at is None:
        locked.acknowledged_by = user
        locked.acknowledged_at = now
    locked.status = Escalation.Status.RESOLVED
    locked.resolved_by = user
    locked.resolved_at = now
    locked.resolution_note = note
    _save(locked, ["status", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "resolution_note"])
    paging.paging_stop(escalation=locked)
    notifications_enqueue(escalation=locked, event=EVENT_UPDATED, webhook=False)
    return True


def _audit(call: Call, *, action: str, user: User, **details: object) -> None:
    """Append a staff action (who, when) to the locked call's metadata; the caller saves `metadata`."""
    entry = {"action": action, "user_id": user.pk, "username": user.get_username(), "at": timezone.now().isoformat()}
    call.metadata = {**(call.metadata or {})}
    call.metadata["staff_actions"] = [*call.metadata.get("staff_actions", [])[-49:], {**entry, **details}]


def call_escalate_by_staff(
    *, call: Call, user: User, level: str, reason: str = "", evidence: str = ""
) -> tuple[Escalation, bool]:
    """A staff member escalates a call (source staff), from the API or the console. Like any trigger, an unresolved
    escalation of the same level is returned instead of a second one. Who and when go into the call's staff_actions
    log."""
    with transaction.atomic():
        escalation, created = escalation_create(
            call=call, level=level, source=Escalation.Source.STAFF, reason=reason, evidence=evidence, created_by=user
        )
        locked = _lock(call)
        _audit(locked, action="escalate", user=user, level=level, escalation_id=str(escalation.pk), created=created)
        _save(locked, ["metadata"])
    return escalation, created


def call_deescalate(*, call: Call, user: User, note: str = "") -> tuple[Call, list[Escalation]]:
    """A staff member judges the call not (or no longer) an escalation: every unresolved escalation of the call is
    resolved by them with `note`, and the call's escalated flag and level are cleared. The escalations stay as the
    record; a later trigger on the call escalates it again. Returns the call and the escalations it resolved."""
    with transaction.atomic():
        locked = _lock(call)
        resolved = []
        for escalation in (
            Escalation.objects.select_for_update()
            .filter(call=locked)
            .exclude(status=Escalation.Status.RESOLVED)
            .order_by("created_at")
        ):
            if _resolve_locked(escalation, user=user, note=note):
                resolved.append(escalation)
        locked.escalated = False
        locked.escalation_level = ""
        # Not an escalation after all: the call is as urgent as its intake says, no more.
        locked.urgency = Intake.objects.filter(call=locked).values_list("urgency", flat=True).first() or ""
        _audit(locked, action="deescalate", user=user, resolved=[str(e.pk) for e in resolved])
        _save(locked, ["escalated", "escalation_level", "urgency", "metadata"])
    logger.info("call deescalated call=%s resolved=%s", locked.pk, len(resolved))
    return locked, resolved


def call_delete(*, call: Call) -> None:
    """Delete a call with its transcript, intake, escalations and notifications (an operator's decision; retention
    purges in bulk in calls/retention.py). The audit rows stay."""
    with transaction.atomic():
        locked = _lock(call)
        audit_record(
            action=Action.DELETE,
            object_type="call",
            organization_id=locked.organization_id,
            object_id=locked.pk,
            details={"cascade": "transcript,intake,escalations"},
        )
        locked.delete()
    logger.info("call deleted call=%s", call.pk)


def webhook_receipt_record(*, source: str, delivery_id: str, event_type: str) -> bool:
    """Remember a webhook delivery; False when it was processed before (a redelivery: do nothing again). Run it in
    the transaction of the delivery's own writes, so a delivery that failed half-way is not remembered."""
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives the duplicate
            WebhookReceipt.objects.create(
                source=source, delivery_id=delivery_id[:128], event_type=event_type[:64], received_at=timezone.now()
            )
    except IntegrityError:
        return False
    return True


def call_metadata_merge(*, call: Call, key: str, fields: dict) -> Call:
    """Merge `fields` into the call's metadata[key] under the row lock (ids and outcomes only, never patient
    data): how a transport records what happened to its call (e.g. metadata["sip"])."""
    with transaction.atomic():
        locked = _lock(call)
        locked.metadata.setdefault(key, {}).update(fields)
        _save(locked, ["metadata"])
    call.metadata = locked.metadata
    return call
