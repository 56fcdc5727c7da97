"""The call event pipeline: one path for everything that happens in a call, whatever transport carries it.

Transports (the browser sideband WebSocket, the browser event-forwarding endpoint, the Twilio phone bridge) feed
GA Realtime *server* events in. The pipeline keeps only the OpenAI protocol: it tracks which responses are active,
hands each utterance and tool call to the clinic's conversation service (`calls.conversation`, which stores,
triages, escalates and decides), and turns the decision into the *client* events the transport must send upstream
(tool outputs, `response.create`, steering) plus a transfer for the transport to carry out. It never does network
I/O itself.

Events may arrive twice or out of order: segments are stored once per upstream item id, tool calls run once per
call_id, and `response.create` is only ever emitted when no response is active (the server refuses a second one
with `conversation_already_has_active_response`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field

from django.utils import timezone

from calls.conversation import Decision, agent_utterance_handle, caller_turn_lost, caller_utterance_handle
from calls.models import Call, Escalation
from calls.services import call_end, call_usage_add
from calls.triage import extra_phrases_for
from core.observability import call_context
from realtime.prompt import response_instructions
from realtime.tools import execute_tool

logger = logging.getLogger(__name__)

# Server events the pipeline acts on. Transports skip everything else (audio deltas above all) without a
# thread hop, so the per-frame path of the phone bridge never reaches the database.
PIPELINE_EVENT_TYPES = frozenset(
    {
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "response.output_audio_transcript.done",
        "response.output_text.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.done",
        "error",
    }
)


def wants(event_type: str) -> bool:
    return event_type in PIPELINE_EVENT_TYPES


# Bounds of what the pipeline remembers (forwarded events come from an untrusted browser, and the forwarding
# endpoint rewrites the whole state on every batch): lists keep their newest entries only, ids are capped.
MAX_TRACKED_RESPONSES = 32
MAX_HANDLED_TOOL_CALLS = 64
MAX_ID_CHARS = 128
MAX_INSTRUCTIONS_CHARS = 8000


def _remember(items: list[str], value: str, limit: int) -> list[str]:
    return [*items[-(limit - 1) :], value[:MAX_ID_CHARS]]


@dataclass
class PipelineState:
    """What the pipeline must remember between events. Kept in memory by long-lived transports and in
    `call.metadata["_pipeline"]` by the stateless event-forwarding endpoint. Bounded (MAX_* above)."""

    active_responses: list[str] = field(default_factory=list)
    finished_responses: list[str] = field(default_factory=list)  # bounded; guards against done-before-created
    response_pending: bool = False  # a response.create is owed once no response is active
    pending_instructions: str = ""
    inflight_instructions: str = ""  # sent with a response.create the server has not confirmed yet
    handled_tool_calls: list[str] = field(default_factory=list)
    uncertain_escalated: bool = False
    emergency_steered: bool = False

    @classmethod
    def from_dict(cls, data: object) -> PipelineState:
        """Rebuild a saved state; anything of the wrong type or over a bound is dropped, never trusted."""
        data = data if isinstance(data, dict) else {}
        state = cls()
        limits = {
            "active_responses": MAX_TRACKED_RESPONSES,
            "finished_responses": MAX_TRACKED_RESPONSES,
            "handled_tool_calls": MAX_HANDLED_TOOL_CALLS,
        }
        for name, limit in limits.items():
            items = data.get(name)
            if isinstance(items, list):
                setattr(state, name, [i for i in items if isinstance(i, str) and len(i) <= MAX_ID_CHARS][-limit:])
        for name in ("response_pending", "uncertain_escalated", "emergency_steered"):
            if isinstance(data.get(name), bool):
                setattr(state, name, data[name])
        for name in ("pending_instructions", "inflight_instructions"):
            if isinstance(data.get(name), str):
                setattr(state, name, data[name][:MAX_INSTRUCTIONS_CHARS])
        return state

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PipelineResult:
    client_events: list[dict] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)  # newly created ones
    transfer_to: str = ""  # the conversation service decided the caller goes to this number now (phone)
    ended: bool = False


class CallEventPipeline:
    def __init__(self, call: Call, *, state: PipelineState | None = None) -> None:
        self.call = call
        self.organization = call.organization
        self.state = state or PipelineState()
        self._extra_phrases: dict[str, list[str]] | None = None

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
            total.transfer_to = total.transfer_to or one.transfer_to
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
        # Also after the call ended: input transcription is asynchronous and may arrive after the response (and
        # after end_call); the caller's words are still stored and triaged (calls.conversation, after_call).
        text = str(event.get("transcript") or "").strip()
        if not text:
            return
        if self._extra_phrases is None:
            self._extra_phrases = extra_phrases_for(self.organization)
        decision = caller_utterance_handle(
            call=self.call,
            text=text,
            item_id=str(event.get("item_id") or ""),
            extra_phrases=self._extra_phrases,
            steer=not self.state.emergency_steered,
        )
        self._carry_out(decision, result)

    def _on_conversation_item_input_audio_transcription_failed(self, event: dict, result: PipelineResult) -> None:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        code = re.sub(r"[^A-Za-z0-9_.-]", "?", str((error or {}).get("code") or "-"))[:64]  # never a forged log line
        logger.warning("caller transcription failed code=%s", code)
        caller_turn_lost(call=self.call, item_id=str(event.get("item_id") or ""))

    def _on_response_output_audio_transcript_done(self, event: dict, result: PipelineResult) -> None:
        text = str(event.get("transcript") or "").strip()
        self._agent_said(text, str(event.get("item_id") or ""), result)

    def _on_response_output_text_done(self, event: dict, result: PipelineResult) -> None:
        self._agent_said(str(event.get("text") or "").strip(), str(event.get("item_id") or ""), result)

    def _on_response_created(self, event: dict, result: PipelineResult) -> None:
        response_id = str((event.get("response") or {}).get("id") or "")
        known = self.state.finished_responses + self.state.active_responses
        if response_id and response_id not in known:
            self.state.active_responses = _remember(self.state.active_responses, response_id, MAX_TRACKED_RESPONSES)
        self.state.inflight_instructions = ""

    def _on_response_done(self, event: dict, result: PipelineResult) -> None:
        response = event.get("response") or {}
        response_id = str(response.get("id") or "")
        if response_id in self.state.active_responses:
            self.state.active_responses.remove(response_id)
        if not response_id or "unknown" in self.state.active_responses:
            # A response we learnt about only from an error (or an id-less event) is over now.
            self.state.active_responses = [r for r in self.state.active_responses if r not in ("unknown", "")]
        self.state.finished_responses = _remember(self.state.finished_responses, response_id, MAX_TRACKED_RESPONSES)
        usage = response.get("usage")
        if isinstance(usage, dict):
            self._record_usage(usage)
        self._flush_pending_response(result)

    def _on_response_function_call_arguments_done(self, event: dict, result: PipelineResult) -> None:
        tool_call_id = str(event.get("call_id") or "")
        if not tool_call_id or tool_call_id in self.state.handled_tool_calls or self.call.is_ended:
            return
        self.state.handled_tool_calls = _remember(self.state.handled_tool_calls, tool_call_id, MAX_HANDLED_TOOL_CALLS)
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
        result.escalations += outcome.decision.escalations
        result.transfer_to = result.transfer_to or outcome.decision.transfer_to
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
                # Per-response instructions replace the session's: they carry the clinic's language rule again.
                event["response"] = {
                    "instructions": response_instructions(self.organization, self.state.pending_instructions)
                }
            result.client_events.append(event)
            self.state.response_pending = False
            self.state.inflight_instructions = self.state.pending_instructions
            self.state.pending_instructions = ""

    def _agent_said(self, text: str, item_id: str, result: PipelineResult) -> None:
        decision = agent_utterance_handle(
            call=self.call, text=text, item_id=item_id, flag_uncertain=not self.state.uncertain_escalated
        )
        if decision.escalation is not None:
            self.state.uncertain_escalated = True  # at most once per call
        result.escalations += decision.escalations

    def _carry_out(self, decision: Decision, result: PipelineResult) -> None:
        """Turn the conversation service's decision about a caller utterance into client events."""
        result.escalations += decision.escalations
        if decision.steering:
            self.state.emergency_steered = True
            self._steer(decision.steering, result)
        elif decision.system_note:
            # Urgent / human: tell the model what the clinic's policy is; it continues the conversation with it.
            result.client_events.append(_system_message(decision.system_note))
        result.transfer_to = result.transfer_to or decision.transfer_to

    def _steer(self, instructions: str, result: PipelineResult) -> None:
        """Make the agent say `instructions` now: cancel what it is saying, inject a system message, respond."""
        if self.state.active_responses:
            result.client_events.append({"type": "response.cancel"})
        result.client_events.append(_system_message(instructions))
        self.state.response_pending = True
        self.state.pending_instructions = instructions
        self._flush_pending_response(result)

    def _record_usage(self, usage: dict) -> None:
        self.call.usage = call_usage_add(call=self.call, usage=usage).usage


def _system_message(text: str) -> dict:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]},
    }
