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

Protocol facts it relies on (openai SDK 3.57 docstrings; docs/facts.md#realtime-pipeline):
- `response.function_call_arguments.done` and `response.output_item.done` are also emitted for interrupted,
  incomplete and cancelled responses: a tool runs only from a function_call item whose status is `completed`
  (`output_item.done`, or the output of `response.done`), as OpenAI's Agents SDK does.
- Input transcription is asynchronous ("may come before or after the Response events"): a segment's place in the
  conversation comes from the item chain (`input_audio_buffer.committed`, `conversation.item.added`), not from
  when its transcript arrived.
- With server VAD `create_response`, a committed caller turn starts a response of its own: an emergency steer
  waits for it (and for a cancelled response's `response.done`) before its `response.create`, bounded by
  STEER_WAIT_SECONDS, so the create is accepted at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.utils import timezone

from calls.conversation import (
    Decision,
    agent_utterance_handle,
    caller_keypad_handle,
    caller_turn_lost,
    caller_utterance_handle,
)
from calls.models import Call, Escalation
from calls.services import (
    call_end,
    call_response_failure_record,
    call_transcription_usage_add,
    call_usage_add,
    transcript_position_top,
    transcript_segment_interrupt,
)
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
        "response.output_item.done",  # tools run from completed function_call items only
        "input_audio_buffer.committed",  # the caller's item: its place, and a response of its own is coming
        "conversation.item.added",  # every item's place in the conversation
        "conversation.item.truncated",  # the caller heard only part of an agent line
        "input_audio_buffer.dtmf_event_received",  # SIP: a keypad press (0: a person, calls.conversation)
        "error",
    }
)

STEER_WAIT_SECONDS = 1.5  # the longest an emergency steer waits for a cancelled response's response.done
RESPONSE_EXPECTED_SECONDS = 3.0  # how long after a committed turn its own response is still expected
MAX_TRACKED_ITEMS = 64  # conversation positions remembered (a late transcript is rarely more than a turn late)
MAX_TRUNCATIONS = 8  # truncations remembered for agent lines whose transcript has not arrived yet


def wants(event_type: str) -> bool:
    return event_type in PIPELINE_EVENT_TYPES


# Bounds of what the pipeline remembers (forwarded events come from an untrusted browser, and the forwarding
# endpoint rewrites the whole state on every batch): lists keep their newest entries only, ids are capped.
MAX_TRACKED_RESPONSES = 32
MAX_HANDLED_TOOL_CALLS = 64
MAX_ID_CHARS = 128
MAX_INSTRUCTIONS_CHARS = 8000


def _id_number_pair(pair: object) -> bool:
    return (
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and len(pair[0]) <= MAX_ID_CHARS
        and isinstance(pair[1], int)
        and not isinstance(pair[1], bool)
    )


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
    create_inflight: bool = False  # we sent a response.create the server has not answered with response.created
    response_expected_at: float = 0.0  # when a caller turn was committed (server VAD starts its response)
    steer_waiting_since: float = 0.0  # a steering response.create waits for a cancelled response to be done
    steer_cancel_on_created: bool = False  # ... and for the response about to start, which it cancels first
    steering_response: str = ""  # the response created with steering instructions
    steering_instructions: str = ""
    steering_retried: bool = False  # a failed steering response is asked for again once
    positions: list[list] = field(default_factory=list)  # [[item_id, position]], the last MAX_TRACKED_ITEMS
    next_position: int = 0  # 0: not seeded from the stored transcript yet
    truncations: list[list] = field(default_factory=list)  # [[item_id, heard_ms]], the last MAX_TRUNCATIONS

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
        flags = (
            "response_pending",
            "uncertain_escalated",
            "emergency_steered",
            "create_inflight",
            "steer_cancel_on_created",
            "steering_retried",
        )
        for name in flags:
            if isinstance(data.get(name), bool):
                setattr(state, name, data[name])
        for name in ("pending_instructions", "inflight_instructions", "steering_instructions"):
            if isinstance(data.get(name), str):
                setattr(state, name, data[name][:MAX_INSTRUCTIONS_CHARS])
        if isinstance(data.get("steering_response"), str):
            state.steering_response = data["steering_response"][:MAX_ID_CHARS]
        for name in ("response_expected_at", "steer_waiting_since"):
            value = data.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                setattr(state, name, float(value))
        next_position = data.get("next_position")
        if isinstance(next_position, int) and not isinstance(next_position, bool) and next_position >= 0:
            state.next_position = next_position
        for name, limit in (("positions", MAX_TRACKED_ITEMS), ("truncations", MAX_TRUNCATIONS)):
            pairs = data.get(name)
            if isinstance(pairs, list):
                setattr(state, name, [list(p) for p in pairs if _id_number_pair(p)][-limit:])
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
    def __init__(
        self, call: Call, *, state: PipelineState | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.call = call
        self.organization = call.organization
        self.state = state or PipelineState()
        self._extra_phrases: dict[str, list[str]] | None = None
        self._turn_latency_ms: int | None = None
        self._clock = clock  # wall-clock seconds: the state may be stored and resumed by another process

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

    def handle(self, event: dict, *, turn_latency_ms: int | None = None) -> PipelineResult:
        """Process one server event; returns what to send upstream and what happened. With a `response.done`, a
        transport that saw the audio passes the turn latency it measured (realtime.latency.TurnClock)."""
        self._turn_latency_ms = turn_latency_ms
        result = PipelineResult()
        event_type = event.get("type") if isinstance(event, dict) else None
        if not isinstance(event_type, str) or not wants(event_type):
            return result
        with call_context(self.call.pk):
            # One line per call event: its type and upstream ids only (never the transcript text).
            logger.info("call event %s item=%s", event_type, event.get("item_id") or event.get("call_id") or "-")
            self._steer_if_overdue(result)
            handler = getattr(self, "_on_" + event_type.replace(".", "_"))
            handler(event, result)
        result.ended = self.call.is_ended
        return result

    def wake_in(self) -> float | None:
        """Seconds until `poll` has work to do although no event came (a steer waiting for response.done); None:
        nothing is waiting. Transports with a socket of their own wait at most this long for the next event."""
        if not self.state.steer_waiting_since:
            return None
        return max(0.0, self.state.steer_waiting_since + STEER_WAIT_SECONDS - self._clock())

    def poll(self) -> PipelineResult:
        """Time passed without an event: a steer that waited STEER_WAIT_SECONDS for response.done is sent anyway.
        No database access."""
        result = PipelineResult()
        with call_context(self.call.pk):
            self._steer_if_overdue(result)
        result.ended = self.call.is_ended
        return result

    def handle_many(self, events: list[dict]) -> PipelineResult:
        total = self.poll()
        for event in events:
            one = self.handle(event)
            total.client_events += one.client_events
            total.escalations += one.escalations
            total.transfer_to = total.transfer_to or one.transfer_to
        total.ended = self.call.is_ended
        return total

    def system_note(self, text: str) -> PipelineResult:
        """Tell the model something the transport learnt (a transfer that failed) and let it respond: the response
        goes out once none is running. No database access."""
        result = PipelineResult()
        if self.call.is_ended:
            return result
        with call_context(self.call.pk):
            result.client_events.append(_system_message(text))
            self.state.response_pending = True
            self._flush_pending_response(result)
        return result

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
        if isinstance(event.get("usage"), dict):  # billed even when nothing was heard
            self.call = call_transcription_usage_add(call=self.call, usage=event["usage"])
        text = str(event.get("transcript") or "").strip()
        if not text:
            return
        if self._extra_phrases is None:
            self._extra_phrases = extra_phrases_for(self.organization)
        item_id = str(event.get("item_id") or "")
        decision = caller_utterance_handle(
            call=self.call,
            text=text,
            item_id=item_id,
            extra_phrases=self._extra_phrases,
            steer=not self.state.emergency_steered,
            position=self._position_of(item_id),
        )
        self._carry_out(decision, result)

    def _on_conversation_item_input_audio_transcription_failed(self, event: dict, result: PipelineResult) -> None:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        logger.warning("caller transcription failed code=%s", _safe_code((error or {}).get("code")))
        item_id = str(event.get("item_id") or "")
        caller_turn_lost(call=self.call, item_id=item_id, position=self._position_of(item_id))

    def _on_response_output_audio_transcript_done(self, event: dict, result: PipelineResult) -> None:
        text = str(event.get("transcript") or "").strip()
        self._agent_said(text, str(event.get("item_id") or ""), result)

    def _on_response_output_text_done(self, event: dict, result: PipelineResult) -> None:
        self._agent_said(str(event.get("text") or "").strip(), str(event.get("item_id") or ""), result)

    def _on_input_audio_buffer_committed(self, event: dict, result: PipelineResult) -> None:
        self._place(str(event.get("item_id") or ""), event.get("previous_item_id"))
        self.state.response_expected_at = self._clock()  # server VAD's create_response starts one for this turn

    def _on_conversation_item_added(self, event: dict, result: PipelineResult) -> None:
        item = event.get("item")
        if isinstance(item, dict):
            self._place(str(item.get("id") or ""), event.get("previous_item_id"))

    def _on_input_audio_buffer_dtmf_event_received(self, event: dict, result: PipelineResult) -> None:
        key = event.get("event")
        decision = caller_keypad_handle(call=self.call, key=key if isinstance(key, str) else "")
        self._carry_out(decision, result)
        if decision.system_note:
            # Nobody spoke, so no response of the caller's turn is coming: ask for the agent's line ourselves.
            self.state.response_pending = True
            self._flush_pending_response(result)

    def _on_conversation_item_truncated(self, event: dict, result: PipelineResult) -> None:
        # The phone bridge's conversation.item.truncate is confirmed with this event; on WebRTC/SIP the server
        # truncates by itself at a barge-in and sends it too.
        item_id = str(event.get("item_id") or "")
        heard_ms = event.get("audio_end_ms")
        if not item_id or isinstance(heard_ms, bool) or not isinstance(heard_ms, int) or heard_ms < 0:
            return
        if not transcript_segment_interrupt(call=self.call, item_id=item_id, heard_ms=heard_ms):
            # The line's transcript comes later (response.output_audio_transcript.done): mark it when it is stored.
            kept = [entry for entry in self.state.truncations if entry[0] != item_id]
            self.state.truncations = [*kept[-(MAX_TRUNCATIONS - 1) :], [item_id, heard_ms]]

    def _on_response_created(self, event: dict, result: PipelineResult) -> None:
        response_id = str((event.get("response") or {}).get("id") or "")
        known = self.state.finished_responses + self.state.active_responses
        if response_id and response_id not in known:
            self.state.active_responses = _remember(self.state.active_responses, response_id, MAX_TRACKED_RESPONSES)
        if self.state.inflight_instructions and response_id:
            self.state.steering_response = response_id
            self.state.steering_instructions = self.state.inflight_instructions
        elif self.state.steer_cancel_on_created:
            # The response the caller's turn started, and not the steer: cancel it; the steer follows its done.
            self.state.steer_cancel_on_created = False
            self.state.steer_waiting_since = self._clock()
            result.client_events.append(_cancel(response_id))
        self.state.inflight_instructions = ""
        self.state.create_inflight = False
        self.state.response_expected_at = 0.0

    def _on_response_done(self, event: dict, result: PipelineResult) -> None:
        response = event.get("response") or {}
        response_id = str(response.get("id") or "")
        for item in response.get("output") or []:
            self._run_completed_tool(item, result)  # an output item whose output_item.done did not reach us
        if response_id in self.state.active_responses:
            self.state.active_responses.remove(response_id)
        if not response_id or "unknown" in self.state.active_responses:
            # A response we learnt about only from an error (or an id-less event) is over now.
            self.state.active_responses = [r for r in self.state.active_responses if r not in ("unknown", "")]
        self.state.finished_responses = _remember(self.state.finished_responses, response_id, MAX_TRACKED_RESPONSES)
        usage = response.get("usage")
        if isinstance(usage, dict) or self._turn_latency_ms is not None:
            self._record_usage(usage if isinstance(usage, dict) else None)
        status = response.get("status")
        if status in ("failed", "incomplete"):
            self._response_failed(response_id, str(status), response.get("status_details"))
        self._flush_pending_response(result)

    def _on_response_output_item_done(self, event: dict, result: PipelineResult) -> None:
        self._run_completed_tool(event.get("item"), result)

    def _run_completed_tool(self, item: object, result: PipelineResult) -> None:
        """Run a tool call once its item is finished and `completed`; one from a cancelled or incomplete response
        (`incomplete`, perhaps with cut-off arguments) is not run: the caller interrupted it."""
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return
        tool_call_id = str(item.get("call_id") or "")
        if item.get("status") != "completed":
            logger.info("tool call not run status=%s call=%s", _safe_code(item.get("status")), _safe_code(tool_call_id))
            return
        if not tool_call_id or tool_call_id in self.state.handled_tool_calls or self.call.is_ended:
            return
        self.state.handled_tool_calls = _remember(self.state.handled_tool_calls, tool_call_id, MAX_HANDLED_TOOL_CALLS)
        name = str(item.get("name") or "")
        outcome = execute_tool(self.call, name, item.get("arguments") or "")
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
        logger.warning("upstream error code=%s type=%s", _safe_code(code), _safe_code(error.get("type")))
        if code == "conversation_already_has_active_response":
            self.state.create_inflight = False
            # Our view of the conversation was behind (e.g. server VAD started its own response): wait for the
            # running response to finish, then retry, keeping any steering instructions of the refused create.
            self.state.response_pending = True
            self.state.pending_instructions = self.state.pending_instructions or self.state.inflight_instructions
            self.state.inflight_instructions = ""  # the next response.created is not the refused steer
            if not self.state.active_responses:
                self.state.active_responses = ["unknown"]

    # --- helpers ------------------------------------------------------------------------------------------------

    def _flush_pending_response(self, result: PipelineResult, *, force: bool = False) -> None:
        state = self.state
        if not state.response_pending or self.call.is_ended:
            return
        if not force and (state.active_responses or state.steer_cancel_on_created):
            return
        event: dict = {"type": "response.create"}
        if state.pending_instructions:
            # Per-response instructions replace the session's: they carry the clinic's language rule again.
            event["response"] = {"instructions": response_instructions(self.organization, state.pending_instructions)}
        result.client_events.append(event)
        state.response_pending = False
        state.create_inflight = True
        state.inflight_instructions = state.pending_instructions
        state.pending_instructions = ""
        state.steer_waiting_since = 0.0
        state.steer_cancel_on_created = False

    def _steer_if_overdue(self, result: PipelineResult) -> None:
        since = self.state.steer_waiting_since
        if since and self._clock() - since >= STEER_WAIT_SECONDS:
            # The cancelled response's response.done did not come: our view is stale; send the steer anyway (a
            # refusal still retries it after the next response.done).
            logger.warning("steering sent without the cancelled response's done")
            self.state.active_responses = []
            self._flush_pending_response(result, force=True)
            self.state.steer_waiting_since = 0.0

    def _response_failed(self, response_id: str, status: str, details: object) -> None:
        """A response ended `failed` (error) or `incomplete` (max_output_tokens, content_filter): log its codes,
        count it on the call, and ask once more for a failed steering response (911/988 must be said)."""
        details = details if isinstance(details, dict) else {}
        error = details.get("error") if isinstance(details.get("error"), dict) else {}
        code = _safe_code((error or {}).get("code") or details.get("reason") or (error or {}).get("type"))
        logger.warning("response %s response=%s code=%s", status, _safe_code(response_id), code)
        self.call = call_response_failure_record(call=self.call, status=status, code=code)
        state = self.state
        if response_id and response_id == state.steering_response and not state.steering_retried:
            state.steering_retried = True
            state.response_pending = True
            state.pending_instructions = state.steering_instructions

    def _place(self, item_id: str, previous_item_id: object) -> None:
        """Give a conversation item its position: after the last item, or beside its predecessor when it is
        inserted earlier. Remembers the last MAX_TRACKED_ITEMS items."""
        if not item_id or self._position_of(item_id) is not None:
            return
        if not self.state.next_position:  # a new pipeline on a call that has a transcript goes on after it
            self.state.next_position = transcript_position_top(call=self.call) + 1
        previous = self._position_of(str(previous_item_id)) if previous_item_id else None
        if previous is not None and previous < self.state.next_position - 1:
            position = previous  # inserted mid-conversation: right after its predecessor (ties keep arrival order)
        else:
            position = self.state.next_position
            self.state.next_position += 1
        self.state.positions = [*self.state.positions[-(MAX_TRACKED_ITEMS - 1) :], [item_id, position]]

    def _position_of(self, item_id: str) -> int | None:
        for known, position in reversed(self.state.positions):
            if known == item_id:
                return int(position)
        return None

    def _agent_said(self, text: str, item_id: str, result: PipelineResult) -> None:
        heard_ms = next((int(ms) for known, ms in self.state.truncations if known == item_id), None)
        decision = agent_utterance_handle(
            call=self.call,
            text=text,
            item_id=item_id,
            flag_uncertain=not self.state.uncertain_escalated,
            position=self._position_of(item_id),
            heard_ms=heard_ms,
        )
        if heard_ms is not None:
            self.state.truncations = [entry for entry in self.state.truncations if entry[0] != item_id]
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
        """Make the agent say `instructions` now: cancel what it is saying, inject a system message, respond.

        The `response.create` goes out only once no response is running, so the server accepts it at once: after
        the cancelled response's `response.done`, and, when the caller's turn is about to start a response of its
        own (server VAD), after that one was created, cancelled and done. Bounded by STEER_WAIT_SECONDS (poll)."""
        state = self.state
        now = self._clock()
        running = [r for r in state.active_responses if r not in ("", "unknown")]
        if state.active_responses:
            result.client_events.append(_cancel(running[-1] if running else ""))
            state.steer_waiting_since = now
        elif state.create_inflight or (
            state.response_expected_at and now - state.response_expected_at < RESPONSE_EXPECTED_SECONDS
        ):
            state.steer_cancel_on_created = True
            state.steer_waiting_since = now
        result.client_events.append(_system_message(instructions))
        state.response_pending = True
        state.pending_instructions = instructions
        self._flush_pending_response(result)

    def _record_usage(self, usage: dict | None) -> None:
        # Every response.done, cancelled ones too (they are billed), with the turn latency the transport measured.
        self.call = call_usage_add(call=self.call, usage=usage, turn_latency_ms=self._turn_latency_ms)


def _safe_code(value: object) -> str:
    """An upstream code or id fit for a log line: never a forged line, never long."""
    return re.sub(r"[^A-Za-z0-9_.-]", "?", str(value or "-"))[:64]


def _cancel(response_id: str) -> dict:
    return {"type": "response.cancel", "response_id": response_id} if response_id else {"type": "response.cancel"}


def _system_message(text: str) -> dict:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]},
    }
