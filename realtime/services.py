"""Realtime workflows: building and minting sessions, linking an OpenAI call, forwarded events."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max

from calls.audit import Action, audit_change
from calls.models import FORWARDED_KEY, SEGMENT_SOURCE_KEY, SOURCE_FORWARDED, Call, TranscriptSegment
from calls.services import browser_agent_side_check, call_start, forwarded_records_before, forwarded_records_mark
from organizations.models import Organization
from realtime import forwarded, sideband
from realtime.pipeline import CallEventPipeline, PipelineResult, PipelineState
from realtime.session import build_session
from realtime.upstream import ClientSecret, client_secret_create

logger = logging.getLogger(__name__)

LINK_OK, LINK_CONFLICT, LINK_ENDED = "ok", "conflict", "ended"
PIPELINE_STATE_KEY = "_pipeline"  # inside Call.metadata, for the stateless event-forwarding flow


def session_for(organization: Organization) -> dict:
    # Prefetched once: the prompt and tools read hours, closures and intake fields.
    organization = Organization.objects.prefetch_related("hours", "closures", "intake_fields").get(pk=organization.pk)
    return build_session(organization)


async def mint(session: dict) -> ClientSecret:
    return await client_secret_create(session)


def web_call_start(organization: Organization) -> tuple[Call, str]:
    return call_start(organization=organization, channel=Call.Channel.WEB)


def public_session(session: dict) -> dict:
    """The effective session for the browser: everything but anything secret-looking (there is none in a GA
    session today; this keeps it so if upstream adds one)."""
    return {k: v for k, v in session.items() if k not in {"client_secret", "api_key"}}


def openai_call_link(*, call: Call, openai_call_id: str) -> str:
    """Record the OpenAI call id on our call (once). Same id again is fine; another id is a conflict."""
    try:
        with transaction.atomic():
            locked = Call.objects.select_for_update().get(pk=call.pk)
            if locked.is_ended:
                return LINK_ENDED
            if locked.openai_call_id and locked.openai_call_id != openai_call_id:
                return LINK_CONFLICT
            if not locked.openai_call_id:
                locked.openai_call_id = openai_call_id
                locked.save(update_fields=["openai_call_id"])
                audit_change(locked, action=Action.CHANGE, fields=["openai_call_id"])
    except IntegrityError:  # the id belongs to another of our calls
        return LINK_CONFLICT
    return LINK_OK


def sideband_start(*, call_id: str, openai_call_id: str) -> bool:
    """Attach the server to the call on this process' event loop (False when already attached here)."""
    return sideband.attach(call_id, openai_call_id)


def forwarded_events_handle(*, call: Call, events: list[dict]) -> tuple[PipelineResult, Call]:
    """Run browser-forwarded server events through the pipeline. Batches for one call are serialised by the row
    lock, and the pipeline's memory (active responses, handled tool calls) is kept on the call between batches.

    A browser is trusted with the caller's own lines only. Agent lines, responses, tool calls, usage and errors are
    refused (calls.services.ForwardingRefused, the whole batch) unless the clinic chose event forwarding and the
    server is not attached to the call; once the call has ended only caller lines count (the token's grace). Lines
    stored from a batch are marked `source: forwarded`, escalations it raised and an intake it wrote `forwarded`, and
    the call `forwarded_events`, so staff can tell them from what the server saw."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().select_related("organization").get(pk=call.pk)
        if any(forwarded.is_agent_event(event) for event in events):
            browser_agent_side_check(locked)
        if locked.is_ended:  # the agent's side is over; the caller's late words still count
            events = [event for event in events if forwarded.is_caller_event(event)]
        last_seq = TranscriptSegment.objects.filter(call=locked).aggregate(top=Max("seq"))["top"] or 0
        state = PipelineState.from_dict((locked.metadata or {}).get(PIPELINE_STATE_KEY))
        before = forwarded_records_before(locked)
        pipeline = CallEventPipeline(locked, state=state)
        result = pipeline.handle_many(events)
        _mark_forwarded(locked, after_seq=last_seq)
        forwarded_records_mark(call=locked, before=before)
        locked.refresh_from_db()
        locked.metadata = {
            **(locked.metadata or {}),
            PIPELINE_STATE_KEY: pipeline.state.to_dict(),
            FORWARDED_KEY: locked.metadata.get(FORWARDED_KEY, False) or any(map(forwarded.is_pipeline_event, events)),
        }
        locked.save(update_fields=["metadata"])
        audit_change(locked, action=Action.CHANGE, fields=["metadata"])
    return result, locked


def _mark_forwarded(call: Call, *, after_seq: int) -> None:
    """Mark the caller and agent lines a forwarded batch stored (system notes are the server's own)."""
    stored = list(
        TranscriptSegment.objects.filter(
            call=call,
            seq__gt=after_seq,
            speaker__in=[TranscriptSegment.Speaker.CALLER, TranscriptSegment.Speaker.AGENT],
        )
    )
    for segment in stored:
        segment.metadata = {**(segment.metadata or {}), SEGMENT_SOURCE_KEY: SOURCE_FORWARDED}
    TranscriptSegment.objects.bulk_update(stored, ["metadata"])
