"""The call event pipeline: one path for everything that happens in a call, whatever transport carries it.

Transports (the browser sideband WebSocket, the browser event-forwarding endpoint, the Twilio phone bridge) feed
GA Realtime *server* events in; the pipeline persists what matters the moment it arrives (transcript segments,
intake, escalations, usage), executes tools, runs triage on every caller utterance, and returns the *client* events
the transport must send upstream (tool outputs, `response.create`, steering). It never does network I/O itself.

Events may arrive twice or out of order: segments are stored once per upstream item id, tool calls run once per
call_id, and `response.create` is only ever emitted when no response is active (protocols.md §2.10 rule 6).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.utils import timezone

from calls.models import Call, Escalation, TranscriptSegment
from calls.services import call_end, escalation_create, transcript_segment_append
from core.observability import call_context
from realtime.tools import escalation_guidance, execute_tool

logger = logging.getLogger(__name__)

# Server events the pipeline acts on. Transports skip everything else (audio deltas above all) without a
# thread hop, so the per-frame path of the phone bridge never reaches the database.
PIPELINE_EVENT_TYPES = frozenset(
    {
        "conversation.item.input_audio_transcription.completed",
        "response.output_audio_transcript.done",
        "response.output_text.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.done",
        "error",
    }
)

EMERGENCY_STEERING = (
    "URGENT SAFETY INSTRUCTION FROM THE CLINIC SYSTEM: the caller has described a possible medical emergency. "
    "Stop the intake. Tell the caller calmly and clearly to hang up and call 911 right now (or, for thoughts of "
    "suicide or self-harm, to call or text 988). Clinic staff have already been alerted. Keep it short."
)

SELF_HARM_STEERING = (
    "URGENT SAFETY INSTRUCTION FROM THE CLINIC SYSTEM: the caller may be at risk of suicide or self-harm. Stop the "
    "intake. Speak calmly and kindly. Tell the caller they can call or text 988, the Suicide and Crisis Lifeline, "
    "right now, and to call 911 if they or someone else is in immediate danger. Clinic staff have been alerted."
)


def wants(event_type: str) -> bool:
    return event_type in PIPELINE_EVENT_TYPES


@dataclass
class PipelineState:
    """What the pipeline must remember between events. Kept in memory by long-lived transports and in
    `call.metadata["pipeline"]` by the stateless event-forwarding endpoint."""

    active_responses: list[str] = field(default_factory=list)
    finished_responses: list[str] = field(default_factory=list)  # bounded; guards against done-before-created
    response_pending: bool = False  # a response.create is owed once no response is active
    pending_instructions: str = ""
    inflight_instructions: str = ""  # sent with a response.create the server has not confirmed yet
    handled_tool_calls: list[str] = field(default_factory=list)
    uncertain_escalated: bool = False
    emergency_steered: bool = False

    @classmethod
    def from_dict(cls, data: dict | None) -> PipelineState:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PipelineResult:
    client_events: list[dict] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)  # newly created, for the transport (transfer…)
    ended: bool = False


TriageFn = Callable[[str], object]


class CallEventPipeline:
    def __init__(self, call: Call, *, state: PipelineState | None = None) -> None:
        self.call = call
        self.organization = call.organization
        self.state = state or PipelineState()
        self._extra_phrases: dict | None = None

    # --- public API ---------------------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.call.is_ended

    @property
    def response_active(self) -> bool:
        return bool(self.state.active_responses)

    @property
    def deadline(self) -> dt.datetime:
        return self.call.started_at + dt.timedelta(minutes=self.organization.max_call_minutes)

    def handle(self, event: dict) -> PipelineResult:
        """Process one server event; returns what to send upstream and what happened."""
        result = PipelineResult()
        event_type = event.get("type") if isinstance(event, dict) else None
        if not isinstance(event_type, str) or not wants(event_type):
            return result
        with call_context(self.call.pk):
            # One line per call event: its type and upstream ids only (never the transcript text).
            logger.info("call event %s item=%s", event_type, event.get("item_id") or event.get("call_id") or "-")
            handler = getattr(self, "_on_" + event_type.replace(".", "_"))
            handler(event, result)
        result.ended = self.call.is_ended
        return result

    def handle_many(self, events: list[dict]) -> PipelineResult:
        total = PipelineResult()
        for event in events:
            one = self.handle(event)
            total.client_events += one.client_events
            total.escalations += one.escalations
        total.ended = self.call.is_ended
        return total

    def refresh(self) -> bool:
        """Reload the call; True when it has been ended elsewhere (API, staff, another transport)."""
        self.call.refresh_from_db()
        return self.call.is_ended

    def finish(self, reason: str) -> Call:
        """End the call (upstream closed, error, caller gone, max length). Idempotent."""
        with call_context(self.call.pk):
            self.call = call_end(call=self.call, reason=reason)
        return self.call

    def check_deadline(self, now: dt.datetime | None = None) -> bool:
        """End the call when it reached the clinic's maximum length; True when it did."""
        if not self.call.is_ended and (now or timezone.now()) >= self.deadline:
            logger.info("call reached max length")
            self.finish(Call.EndReason.TIMEOUT)
            return True
        return False

    # --- event handlers -----------------------------------------------------------------------------------------

    def _on_conversation_item_input_audio_transcription_completed(self, event: dict, result: PipelineResult) -> None:
        text = str(event.get("transcript") or "").strip()
        if not text or self.call.is_ended:
            return
        segment = transcript_segment_append(
            call=self.call, speaker=TranscriptSegment.Speaker.CALLER, text=text, item_id=str(event.get("item_id") or "")
        )
        if segment is not None:  # a redelivered transcript is not triaged twice
            self._triage_caller(text, result)

    def _on_response_output_audio_transcript_done(self, event: dict, result: PipelineResult) -> None:
        text = str(event.get("transcript") or "").strip()
        self._agent_said(text, str(event.get("item_id") or ""), result)

    def _on_response_output_text_done(self, event: dict, result: PipelineResult) -> None:
        self._agent_said(str(event.get("text") or "").strip(), str(event.get("item_id") or ""), result)

    def _on_response_created(self, event: dict, result: PipelineResult) -> None:
        response_id = str((event.get("response") or {}).get("id") or "")
        known = self.state.finished_responses + self.state.active_responses
        if response_id and response_id not in known:
            self.state.active_responses.append(response_id)
        self.state.inflight_instructions = ""

    def _on_response_done(self, event: dict, result: PipelineResult) -> None:
        response = event.get("response") or {}
        response_id = str(response.get("id") or "")
        if response_id in self.state.active_responses:
            self.state.active_responses.remove(response_id)
        if not response_id or "unknown" in self.state.active_responses:
            # A response we learnt about only from an error (or an id-less event) is over now.
            self.state.active_responses = [r for r in self.state.active_responses if r not in ("unknown", "")]
        self.state.finished_responses = [*self.state.finished_responses[-31:], response_id]
        usage = response.get("usage")
        if isinstance(usage, dict):
            self._record_usage(usage)
        self._flush_pending_response(result)

    def _on_response_function_call_arguments_done(self, event: dict, result: PipelineResult) -> None:
        tool_call_id = str(event.get("call_id") or "")
        if not tool_call_id or tool_call_id in self.state.handled_tool_calls or self.call.is_ended:
            return
        self.state.handled_tool_calls.append(tool_call_id)
        name = str(event.get("name") or "")
        outcome = execute_tool(self.call, name, event.get("arguments") or "")
        logger.info("tool executed name=%s ok=%s", name, outcome.output.get("ok"))
        self.call.refresh_from_db()
        result.client_events.append(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": tool_call_id, "output": outcome.output_json()},
            }
        )
        if outcome.escalation is not None and outcome.created_escalation:
            result.escalations.append(outcome.escalation)
        if outcome.ended:
            self.state.response_pending = False
            return
        self.state.response_pending = True
        self._flush_pending_response(result)

    def _on_error(self, event: dict, result: PipelineResult) -> None:
        error = event.get("error") or {}
        code = error.get("code")
        logger.warning("upstream error code=%s type=%s", code, error.get("type"))
        if code == "conversation_already_has_active_response":
            # Our view of the conversation was behind (e.g. server VAD started its own response): wait for the
            # running response to finish, then retry, keeping any steering instructions of the refused create.
            self.state.response_pending = True
            self.state.pending_instructions = self.state.pending_instructions or self.state.inflight_instructions
            if not self.state.active_responses:
                self.state.active_responses.append("unknown")

    # --- helpers ------------------------------------------------------------------------------------------------

    def _flush_pending_response(self, result: PipelineResult) -> None:
        if self.state.response_pending and not self.state.active_responses and not self.call.is_ended:
            event: dict = {"type": "response.create"}
            if self.state.pending_instructions:
                event["response"] = {"instructions": self.state.pending_instructions}
            result.client_events.append(event)
            self.state.response_pending = False
            self.state.inflight_instructions = self.state.pending_instructions
            self.state.pending_instructions = ""

    def _agent_said(self, text: str, item_id: str, result: PipelineResult) -> None:
        if not text:
            return
        segment = transcript_segment_append(
            call=self.call, speaker=TranscriptSegment.Speaker.AGENT, text=text, item_id=item_id
        )
        if segment is None or self.state.uncertain_escalated or self.call.is_ended:
            return
        from calls.triage import assess_agent

        assessment = assess_agent(text)
        if assessment is not None:
            self.state.uncertain_escalated = True  # at most once per call
            escalation, created = escalation_create(
                call=self.call,
                level=Escalation.Level.UNCERTAIN,
                source=Escalation.Source.KEYWORD,
                reason="agent_uncertain",
                evidence=", ".join(assessment.evidence),
            )
            if created:
                result.escalations.append(escalation)

    def _triage_caller(self, text: str, result: PipelineResult) -> None:
        from calls.triage import assess, extra_phrases_for

        if self._extra_phrases is None:
            self._extra_phrases = extra_phrases_for(self.organization)
        assessment = assess(text, languages=self.organization.agent_languages, extra_phrases=self._extra_phrases)
        if assessment.level == "routine":
            return
        escalation, created = escalation_create(
            call=self.call,
            level=assessment.level,
            source=Escalation.Source.KEYWORD,
            reason=", ".join(assessment.reasons)[:300],
            evidence=", ".join(assessment.evidence),
        )
        self.call.refresh_from_db()
        if not created:
            return
        result.escalations.append(escalation)
        guidance = escalation_guidance(self.organization, assessment.level)
        transcript_segment_append(
            call=self.call,
            speaker=TranscriptSegment.Speaker.SYSTEM,
            text=f"Escalated ({assessment.level}: {', '.join(assessment.reasons)}). Policy: {guidance}",
        )
        if assessment.level == Escalation.Level.EMERGENCY and not self.state.emergency_steered:
            self.state.emergency_steered = True
            script = SELF_HARM_STEERING if "self_harm" in assessment.reasons else EMERGENCY_STEERING
            self._steer(script, result)
        else:
            # Urgent / human: tell the model what the clinic's policy is; it continues the conversation with it.
            result.client_events.append(_system_message(f"Clinic system note: {guidance}"))

    def _steer(self, instructions: str, result: PipelineResult) -> None:
        """Make the agent say `instructions` now: cancel what it is saying, inject a system message, respond."""
        if self.state.active_responses:
            result.client_events.append({"type": "response.cancel"})
        result.client_events.append(_system_message(instructions))
        self.state.response_pending = True
        self.state.pending_instructions = instructions
        self._flush_pending_response(result)

    def _record_usage(self, usage: dict) -> None:
        with transaction.atomic():
            locked = Call.objects.select_for_update().only("usage").get(pk=self.call.pk)
            totals = dict(locked.usage or {})
            for key in ("input_tokens", "output_tokens", "total_tokens"):
                value = usage.get(key)
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
            totals["responses"] = totals.get("responses", 0) + 1
            locked.usage = totals
            locked.save(update_fields=["usage"])
        self.call.usage = totals


def _system_message(text: str) -> dict:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]},
    }
