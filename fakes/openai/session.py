"""One realtime session of the fake: the GA event protocol, a scripted "model" and a scripted caller.

A `RealtimeSession` owns the conversation state (items, the active response, function calls awaiting output, audio
produced per item) and talks to one or more WebSockets (a WebRTC call's sideband may be attached more than once).
Client events are handled one at a time in arrival order; responses and the caller script run as tasks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import audio
from .protocol import (
    CLOCK,
    MAX_APPEND_BYTES,
    ProtocolError,
    check_client_event,
    invalid_type,
    invalid_value,
    merge_session,
    missing_parameter,
    new_id,
    validate_item,
    validate_response_params,
    validate_session,
)
from .scenarios import DEFAULT_REPLY, DEFAULT_TOOL_ACK, AgentReply, Scenario, ToolCall, Turn

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("fakes.openai")

AUDIO_CHUNK_MS = 100
ARGUMENT_CHUNK_CHARS = 24
# Usage the fake bills (docs/fakes.md#usage; the rates are a guess, the shapes are the SDK's): caller audio 10
# tokens a second, agent audio 20, text about 4 characters a token (8 for JSON items).
CALLER_AUDIO_MS_PER_TOKEN = 100
AGENT_AUDIO_MS_PER_TOKEN = 50
# Transcription models billed by tokens (`usage.type == "tokens"`); the others report audio seconds ("duration").
TOKEN_BILLED_TRANSCRIPTION = frozenset(
    {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize"}
)
ARGUMENT_CHUNK_SECONDS = 0.1  # arguments stream like tokens (times pace and time_scale): a barge-in can cut them


@dataclass
class SessionLog:
    """What happened in one realtime session, for tests to assert on. Safe to read from another thread."""

    id: str
    kind: str  # "model" (GET /realtime?model=) or "call" (GET /realtime?call_id=, the sideband)
    model: str
    call_id: str | None = None
    scenario: str | None = None
    headers: dict = field(default_factory=dict)
    received: list[dict] = field(default_factory=list)  # client events, parsed, in arrival order
    sent: list[dict] = field(default_factory=list)  # server events, in send order
    violations: list[str] = field(default_factory=list)  # protocol misuse by the client under test
    function_calls: list[dict] = field(default_factory=list)  # {call_id, name, arguments (dict), response_id}
    tool_outputs: dict[str, str] = field(default_factory=dict)  # call_id -> output string, as received
    truncations: list[dict] = field(default_factory=list)
    audio_bytes_in: int = 0
    audio_bytes_out: int = 0
    sockets_opened: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    # Call sessions: whether the caller was still hearing agent audio (output_audio_buffer not stopped) when the call
    # ended; None while it goes on.
    playing_at_end: bool | None = None
    script_done: threading.Event = field(default_factory=threading.Event)  # the last scripted turn was answered
    ended: threading.Event = field(default_factory=threading.Event)  # socket closed (model) / call ended (call)

    def events(self, type_: str) -> list[dict]:
        return [e for e in self.sent if e["type"] == type_]

    def sent_types(self) -> list[str]:
        return [e["type"] for e in self.sent]

    def received_types(self) -> list[str | None]:
        """The `type` of each client event; None for a frame that was not JSON or had no string type."""
        return [kind if isinstance(kind := e.get("type"), str) else None for e in self.received]

    def errors(self) -> list[dict]:
        """The `error` payloads sent to the client (each with code, message, param, event_id)."""
        return [e["error"] for e in self.events("error")]

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) in conversation order: caller transcriptions and agent audio transcripts."""
        lines = []
        for e in self.sent:
            if e["type"] == "conversation.item.input_audio_transcription.completed":
                lines.append(("caller", e["transcript"]))
            elif e["type"] in ("response.output_audio_transcript.done", "response.output_text.done"):
                lines.append(("agent", e.get("transcript", e.get("text", ""))))
        return lines


class _ResponseRun:
    def __init__(self, response: dict, *, in_conversation: bool, failure: dict | None = None) -> None:
        self.response = response
        self.in_conversation = in_conversation
        self.failure = failure  # {"status": "failed"|"incomplete", ...}: how this response goes wrong
        self.playing: str | None = None  # the assistant audio item being produced (a call truncates it on barge-in)
        self.generated: dict[str, str] = {}  # item id -> transcript generated so far (truncation does not change it)
        self.cancel_reason: str | None = None
        self.cancelled = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.audio_ms = 0  # produced so far (a cancelled response is billed for what it produced)
        self.text_chars = 0

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self.cancelled.set()


class _Cancelled(Exception):
    pass


class _Failed(Exception):
    """The scenario makes this response fail or stop incomplete (`response_failures`)."""

    def __init__(self, spec: dict) -> None:
        super().__init__(spec.get("status", "failed"))
        self.spec = spec


class RealtimeSession:
    def __init__(
        self,
        *,
        session: dict,
        log_: SessionLog,
        scenario: Scenario | None,
        time_scale: float,
        pace: float,
        answer_timeout: float,
        is_call: bool,
        on_call_end: Callable[[], Any] | None = None,
    ) -> None:
        self.session = session
        self.log = log_
        self.scenario = scenario
        self.time_scale = time_scale
        self.pace = pace
        self.answer_timeout = answer_timeout
        self.is_call = is_call
        self.on_call_end = on_call_end
        self.sockets: list[web.WebSocketResponse] = []
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.items: dict[str, dict] = {}  # conversation, in order
        self.audio_ms: dict[str, int] = {}  # assistant item id -> ms of audio produced
        self.playback_started: dict[str, float] = {}  # assistant item id -> loop time its first audio was sent
        self.function_calls: dict[str, dict] = {}  # call_id -> {name, item_id, answered}
        self.active: _ResponseRun | None = None
        self.awaiting_calls: list[str] = []  # call ids of the last response, answered before its follow-up
        self.follow_up: AgentReply | None = None
        self.pending_reply: AgentReply | None = None
        self.greeted = False
        self.voice_locked = False
        self.input_buffer = 0  # bytes appended since the last commit/clear
        self.input_ms = 0  # the session's input audio clock (appended audio plus scripted speech)
        self.turn_index = 0
        self.client_responses = 0  # in-conversation responses the client asked for (response.create)
        self.conversation_id = new_id("conv")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._playback: asyncio.Task[None] | None = None
        self._started = False
        self.closed = False
        self._cached_input = (0, 0)  # (text, audio) input tokens of the last response: the cacheable prefix
        # Call sessions (WebRTC/SIP) play audio to the caller themselves: a playout clock for output_audio_buffer.*.
        self._play_until = 0.0
        self._playing: str | None = None  # response id whose audio is in the output buffer
        self._playing_item: str | None = None  # the item whose audio was queued last (what a barge-in truncates)
        self._stop_task: asyncio.Task[None] | None = None

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _spawn[T](self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def send(self, event: dict) -> None:
        if "event_id" not in event:
            event = {"event_id": new_id("event"), **event}
        data = json.dumps(event)
        self.log.sent.append(json.loads(data))  # a snapshot: items in flight are mutated after they are sent
        async with self._send_lock:
            for ws in list(self.sockets):
                if not ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_str(data)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                return False
        return True

    def _violation(self, message: str) -> None:
        log.info("fake_openai violation in %s: %s", self.log.id, message)
        self.log.violations.append(message)

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds * self.time_scale))

    @property
    def _turn_detection(self) -> dict | None:
        return self.session["audio"]["input"]["turn_detection"]

    @property
    def _last_item_id(self) -> str | None:
        return next(reversed(self.items), None) if self.items else None

    async def attach(self, ws: web.WebSocketResponse) -> None:
        """A socket joins: it gets `session.created`; the script starts at the first session.update (or later)."""
        self.sockets.append(ws)
        self.log.sockets_opened += 1
        data = json.dumps({"type": "session.created", "event_id": new_id("event"), "session": self.session})
        self.log.sent.append(json.loads(data))
        await ws.send_str(data)
        if self.scenario is not None and self._playback is None:
            self._playback = self._spawn(self._play_script())

    async def detach(self, ws: web.WebSocketResponse) -> None:
        if ws in self.sockets:
            self.sockets.remove(ws)
        self.log.close_codes.append(ws.close_code)
        if not self.is_call and not self.sockets:
            await self.close()

    async def close(self, *, code: int = 1000, message: str = "") -> None:
        """End the session: stop the script and responses, close sockets (a call's hangup ends here too)."""
        if self.closed:
            return
        self.closed = True
        if self.is_call:
            self.log.playing_at_end = self._playing is not None
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=message.encode())
        self.log.ended.set()

    # --- client events --------------------------------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            self.log.received.append({"type": None, "_raw": text[:200]})
            await self.send(
                ProtocolError("Invalid JSON: the client event could not be parsed.", code="invalid_json").event(
                    client_event_id=None
                )
            )
            return
        # The log holds objects only (tests read e["type"]); other JSON values are kept raw, as unparseable text is.
        self.log.received.append(event if isinstance(event, dict) else {"type": None, "_raw": text[:200]})
        event_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            kind, event_id = check_client_event(event)
            await getattr(self, "_on_" + kind.replace(".", "_"))(event)
        except ProtocolError as exc:
            await self.send(exc.event(client_event_id=event_id if isinstance(event_id, str) else None))

    async def _on_session_update(self, event: dict) -> None:
        if "session" not in event:
            raise missing_parameter("session")
        update = validate_session(event["session"], path="session")
        if "model" in update and update["model"] != self.session["model"]:
            raise ProtocolError(
                "Cannot update a session's model after it is created.", code="invalid_value", param="session.model"
            )
        voice = update.get("audio", {}).get("output", {}).get("voice")
        if voice is not None and voice != self.session["audio"]["output"]["voice"] and self.voice_locked:
            raise ProtocolError(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.audio.output.voice",
            )
        self.session = merge_session(self.session, update)
        await self.send({"type": "session.updated", "session": self.session})
        if not self._started:
            self._started = True
            await self._notify()

    async def _on_input_audio_buffer_append(self, event: dict) -> None:
        data = event.get("audio")
        if not isinstance(data, str):
            raise invalid_type("audio", "a string", data) if "audio" in event else missing_parameter("audio")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(
                "Invalid 'audio'. Expected base64-encoded audio bytes.", code="invalid_value", param="audio"
            ) from None
        if len(raw) > MAX_APPEND_BYTES:
            raise ProtocolError("Audio chunk too large: at most 15 MiB per event.", code="invalid_value", param="audio")
        self.input_buffer += len(raw)
        self.log.audio_bytes_in += len(raw)
        self.input_ms += len(raw) // audio.bytes_per_ms(self.session["audio"]["input"]["format"])

    async def _on_input_audio_buffer_commit(self, event: dict) -> None:
        per_ms = audio.bytes_per_ms(self.session["audio"]["input"]["format"])
        buffered_ms = self.input_buffer / per_ms
        if buffered_ms < 100:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer "
                f"only has {buffered_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        self.input_buffer = 0
        turn = None
        # Without turn detection the client drives turns: each commit is the next scripted caller line.
        if self.scenario is not None and self._turn_detection is None and self.turn_index < len(self.scenario.turns):
            turn = self.scenario.turns[self.turn_index]
            self.turn_index += 1
        await self._user_turn(new_id("item"), transcript=turn.caller if turn else "", turn=turn)
        if turn is not None:
            self.pending_reply = turn.agent

    async def _on_input_audio_buffer_clear(self, event: dict) -> None:
        self.input_buffer = 0
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _on_output_audio_buffer_clear(self, event: dict) -> None:
        if not self.is_call:
            raise ProtocolError(
                "output_audio_buffer.clear is only supported for WebRTC and SIP connections.", code="invalid_event"
            )
        if self._playing is not None:
            await self._clear_playback()
            return
        response_id = self.active.response["id"] if self.active else None
        await self.send({"type": "output_audio_buffer.cleared", "response_id": response_id or ""})

    async def _on_conversation_item_create(self, event: dict) -> None:
        if "item" not in event:
            raise missing_parameter("item")
        item = validate_item(event["item"])
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self.items:
            raise invalid_value("previous_item_id", previous)
        item_id = item.get("id") or new_id("item")
        if item_id in self.items:
            raise ProtocolError(f"Item with id '{item_id}' already exists.", code="invalid_value", param="item.id")
        if item["type"] == "function_call_output":
            call_id = item["call_id"]
            if call_id not in self.function_calls:
                self._violation(f"function_call_output for unknown call_id {call_id}")
                raise ProtocolError(
                    f"Tool call ID '{call_id}' not found in conversation.", code="invalid_value", param="item.call_id"
                )
            if call_id in self.log.tool_outputs:
                self._violation(f"second function_call_output for call_id {call_id}")
            self.log.tool_outputs[call_id] = item["output"]
            self.function_calls[call_id]["answered"] = True
        elif item["type"] == "function_call":
            self.function_calls[item["call_id"]] = {"name": item["name"], "item_id": item_id, "answered": False}
        if item["type"] == "message" and item["role"] == "assistant":
            for part in item["content"]:
                part.setdefault("transcript", None)
        item.update(id=item_id, object="realtime.item", status="completed")
        prev = self._last_item_id if previous is None else previous
        self.items[item_id] = item
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": item})
        await self._notify()

    async def _on_conversation_item_truncate(self, event: dict) -> None:
        for key in ("item_id", "content_index", "audio_end_ms"):
            if key not in event:
                raise missing_parameter(key)
        item_id, content_index, end_ms = event["item_id"], event["content_index"], event["audio_end_ms"]
        item = self.items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            raise ProtocolError(f"Item with item_id not found: {item_id}", code="invalid_value", param="item_id")
        if item_id not in self.audio_ms:
            raise ProtocolError(
                "Only assistant messages with audio can be truncated.", code="invalid_value", param="item_id"
            )
        if content_index != 0:
            raise invalid_value("content_index", content_index, (0,))
        if isinstance(end_ms, bool) or not isinstance(end_ms, int) or end_ms < 0:
            raise invalid_type("audio_end_ms", "a non-negative integer", end_ms)
        produced = self.audio_ms[item_id]
        if end_ms > produced:
            raise ProtocolError(
                f"Audio content of {produced}ms is already shorter than {end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        await self._truncate(item_id, end_ms)

    async def _truncate(self, item_id: str, end_ms: int) -> None:
        """Cut an assistant audio item at `end_ms`: the server deletes the unheard part of its transcript (SDK
        `ConversationItemTruncateEvent` docstring) and confirms with `conversation.item.truncated`."""
        item = self.items[item_id]
        produced = self.audio_ms[item_id]
        part = item["content"][0] if item.get("content") else None
        if part and part.get("transcript"):
            words = part["transcript"].split()
            keep = round(len(words) * end_ms / produced) if produced else 0
            part["transcript"] = " ".join(words[:keep])
        self.audio_ms[item_id] = end_ms
        self.log.truncations.append({"item_id": item_id, "audio_end_ms": end_ms, "produced_ms": produced})
        await self.send(
            {"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}
        )

    async def _on_conversation_item_delete(self, event: dict) -> None:
        item_id = event.get("item_id")
        if item_id not in self.items:
            raise ProtocolError(f"Item with item_id not found: {item_id}", code="invalid_value", param="item_id")
        del self.items[item_id]
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_conversation_item_retrieve(self, event: dict) -> None:
        item_id = event.get("item_id")
        if item_id not in self.items:
            raise ProtocolError(f"Item with item_id not found: {item_id}", code="invalid_value", param="item_id")
        await self.send({"type": "conversation.item.retrieved", "item": self.items[item_id]})

    async def _on_response_create(self, event: dict) -> None:
        params = validate_response_params(event.get("response") or {})
        if self.is_call and not self._started:
            # A SIP call's session was set at accept: the server greets with a response.create, no session.update.
            self._started = True
            await self._notify()
        in_conversation = params.get("conversation", "auto") != "none"
        if in_conversation and self.active is not None:
            self._violation("response.create while a response is active")
            raise ProtocolError(
                f"Conversation already has an active response in progress: {self.active.response['id']}. Wait until "
                "the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        if not in_conversation:
            self._start_response(AgentReply(say=self._default_reply()), params, in_conversation=False)
            return
        unanswered = [cid for cid in self.awaiting_calls if not self.function_calls[cid]["answered"]]
        if unanswered:
            self._violation("response.create before function_call_output for call_id " + ", ".join(unanswered))
        if self.follow_up is not None:
            reply, self.follow_up, self.awaiting_calls = self.follow_up, None, []
        elif self.pending_reply is not None:
            reply, self.pending_reply = self.pending_reply, None
        elif self.scenario is not None and self.scenario.greeting and not self.greeted:
            reply = AgentReply(say=self.scenario.greeting)
        else:
            reply = AgentReply(say=self._default_reply())
        self.greeted = True
        # The scenario's `response_failures`: the Nth client-requested response fails (or stops incomplete).
        failures = self.scenario.response_failures if self.scenario else ()
        failure = failures[self.client_responses] if self.client_responses < len(failures) else None
        self.client_responses += 1
        self._start_response(reply, params, in_conversation=True, failure=failure)

    async def _on_response_cancel(self, event: dict) -> None:
        response_id = event.get("response_id")
        run = self.active
        if run is None or (response_id is not None and response_id != run.response["id"]):
            raise ProtocolError("Cancellation failed: no active response found", code="response_cancel_not_active")
        run.cancel("client_cancelled")

    def _default_reply(self) -> str:
        return self.scenario.default_reply if self.scenario else DEFAULT_REPLY

    # --- the scripted caller --------------------------------------------------------------------------------------

    def _idle(self) -> bool:
        return self.active is None and self.follow_up is None

    async def _play_script(self) -> None:
        scenario = self.scenario
        assert scenario is not None
        # Start at the first session.update; a sideband client that never sends one still gets its call played.
        await self._wait_until(lambda: self._started, scenario.start_after)
        self._started = True
        declared = {t.get("name") for t in self.session.get("tools") or []}
        for name in scenario.expect.tools_declared:
            if name not in declared:
                self._violation(f"tool {name} not declared in the session when the call started")
        if self._turn_detection is None:
            return  # the client commits audio itself; each commit plays the next turn
        while self.turn_index < len(scenario.turns) and not self.closed:
            turn = scenario.turns[self.turn_index]
            if turn.over_playback:  # over the audio still playing, once its response (and tool calls) are done
                await self._wait_until(lambda: self.active is None, self.answer_timeout)
            elif not turn.interrupt:  # a barge-in does not wait for the agent to finish
                await self._wait_for_answers()
            await self._sleep(turn.delay)
            self.turn_index += 1
            await self._caller_speaks(turn)
        await self._wait_for_answers()
        self.log.script_done.set()
        if self.is_call and scenario.hangup_after is not None and not self.closed:
            await self._sleep(scenario.hangup_after)
            if self.on_call_end is not None:
                await self.on_call_end()

    async def _wait_for_answers(self) -> None:
        if not await self._wait_until(self._idle, self.answer_timeout):
            waiting = [cid for cid in self.awaiting_calls if not self.function_calls[cid]["answered"]]
            if waiting:
                self._violation(
                    f"tool call(s) {', '.join(waiting)} not answered with function_call_output and response.create "
                    f"within {self.answer_timeout:g}s"
                )
            elif self.follow_up is not None:
                self._violation(f"no response.create after tool outputs within {self.answer_timeout:g}s")
            # else: our own response is still streaming (a slow machine), which is no fault of the client's
            self.follow_up, self.awaiting_calls = None, []

    async def _caller_speaks(self, turn: Turn) -> None:
        if turn.dtmf:
            # SIP only: keypad presses arrive as events, not audio; the model does not answer them by itself (the
            # server decides), so the turn's reply waits for the client's response.create.
            for key in turn.dtmf:
                await self.send(
                    {"type": "input_audio_buffer.dtmf_event_received", "event": key, "received_at": int(CLOCK.get()())}
                )
            self.pending_reply = turn.agent
            if not turn.caller:
                return
        item_id = new_id("item")
        td = self._turn_detection or {}
        start_ms = self.input_ms
        await self.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": start_ms, "item_id": item_id})
        if td.get("interrupt_response", True):
            if self.active is not None and self.active.in_conversation:
                self.active.cancel("turn_detected")
            playing = self._playing_item
            if self.is_call and self._playing is not None and playing in self.items:
                # WebRTC/SIP: the server knows what was played (the audio plays on after response.done) and
                # truncates the item itself; the phone bridge over WebSocket sends conversation.item.truncate instead.
                elapsed = asyncio.get_running_loop().time() - self.playback_started[playing]
                produced = self.audio_ms[playing]
                played = min(produced, int(elapsed * 1000 / self.time_scale)) if self.time_scale else produced
                if played < produced:
                    await self._truncate(playing, played)
            await self._clear_playback()
        speech = audio.speech_ms(turn.caller)
        await self._sleep(speech / 1000)
        self.input_ms = max(self.input_ms, start_ms + speech)
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": self.input_ms, "item_id": item_id}
        )
        self.input_buffer = 0
        await self._user_turn(item_id, transcript=turn.caller, turn=turn)
        self.pending_reply = turn.agent
        if td.get("create_response", True):
            await self._wait_until(lambda: self.active is None, self.answer_timeout)
            if self.active is None and self.pending_reply is turn.agent:
                self.pending_reply = None
                self.follow_up, self.awaiting_calls = None, []  # a new caller turn supersedes an unanswered tool call
                self._start_response(turn.agent, {}, in_conversation=True)

    async def _user_turn(self, item_id: str, *, transcript: str, turn: Turn | None) -> None:
        previous = self._last_item_id
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items[item_id] = item
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        transcription = self.session["audio"]["input"]["transcription"]
        if transcription is not None and turn is not None and turn.transcription_failed:
            failed = {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item_id,
                "content_index": 0,
                "error": {"type": "server_error", "code": "transcription_failed", "message": "Transcription failed."},
            }
            if turn.transcript_delay > 0:
                self._spawn(self._send_later(failed, turn.transcript_delay))
            else:
                await self.send(failed)
        elif transcription is not None:
            item["content"][0]["transcript"] = transcript
            event = {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": _transcription_usage(transcription.get("model"), transcript),
            }
            if transcription.get("model") == "gpt-transcribe":
                language = (turn.language if turn else None) or (self.scenario.language if self.scenario else None)
                event["languages"] = [{"code": language}] if language else []
            if turn is not None and turn.transcript_delay > 0:
                self._spawn(self._send_later(event, turn.transcript_delay))  # after the response's events
            else:
                await self.send(event)

    async def _send_later(self, event: dict, seconds: float) -> None:
        await self._sleep(seconds)
        if not self.closed:
            await self.send(event)

    # --- the scripted model ---------------------------------------------------------------------------------------

    def _start_response(
        self, reply: AgentReply, params: dict, *, in_conversation: bool, failure: dict | None = None
    ) -> None:
        session = self.session
        output = session["audio"]["output"]
        audio_out = params.get("audio", {}).get("output", {})
        response = {
            "object": "realtime.response",
            "id": new_id("resp"),
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id if in_conversation else None,
            "output_modalities": params.get("output_modalities", session["output_modalities"]),
            "max_output_tokens": params.get("max_output_tokens", session["max_output_tokens"]),
            "audio": {
                "output": {
                    "format": audio_out.get("format", output["format"]),
                    "voice": audio_out.get("voice", output["voice"]),
                }
            },
            "usage": None,
            "metadata": params.get("metadata"),
        }
        tools = params.get("tools", session.get("tools") or [])
        tool_choice = params.get("tool_choice", session.get("tool_choice", "auto"))
        run = _ResponseRun(response, in_conversation=in_conversation, failure=failure)
        if in_conversation:
            self.active = run
        run.task = self._spawn(self._run_response(run, reply, tools=tools, tool_choice=tool_choice))

    async def _checkpoint(self, run: _ResponseRun, seconds: float = 0.0) -> None:
        delay = max(0.0, seconds * self.time_scale)
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.cancelled.wait(), delay)
        else:
            await asyncio.sleep(0)
        if run.cancel_reason is not None:
            raise _Cancelled

    async def _run_response(self, run: _ResponseRun, reply: AgentReply, *, tools: list, tool_choice: Any) -> None:
        response = run.response
        calls: list[str] = []
        in_text, in_audio = self._context_tokens() if run.in_conversation else (40, 0)
        try:
            await self.send({"type": "response.created", "response": {**response, "output": []}})
            await self.send(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [
                        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                        {"name": "tokens", "limit": 40000, "remaining": 38200, "reset_seconds": 2.7},
                    ],
                }
            )
            if run.failure is not None and run.failure.get("status") == "failed":
                raise _Failed(run.failure)
            if run.failure is not None:  # incomplete: the output stops half-way (max_output_tokens, content_filter)
                words = (reply.say or self._default_reply()).split(" ")
                await self._speak(run, " ".join(words[: max(1, len(words) // 2)]), finish=False)
                raise _Failed(run.failure)
            if reply.say:
                await self._speak(run, reply.say)
            tool_calls = [] if tool_choice == "none" else list(reply.tool_calls)
            declared = {t.get("name") for t in tools}
            for call in tool_calls:
                if call.name not in declared:
                    self._violation(f"the script calls {call.name}, which is not among the session's tools")
                calls.append(await self._call_tool(run, call))
            response["status"] = "completed"
        except _Cancelled:
            response["status"] = "cancelled"
            response["status_details"] = {"type": "cancelled", "reason": run.cancel_reason}
            await self._close_unfinished_items(run)
        except _Failed as failed:
            status = failed.spec.get("status", "failed")
            response["status"] = status
            if status == "failed":
                error = {
                    "type": failed.spec.get("type", "server_error"),
                    "code": failed.spec.get("code", "server_error"),
                }
                error["message"] = "The server had an error while processing your request."
                response["status_details"] = {"type": "failed", "error": error}
            else:
                reason = failed.spec.get("reason", "max_output_tokens")
                response["status_details"] = {"type": "incomplete", "reason": reason}
            await self._close_unfinished_items(run)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in the fake must not hang the client: fail the response like the API would
            log.exception("fake_openai response failed")
            response["status"] = "failed"
            response["status_details"] = {
                "type": "failed",
                "error": {"type": "server_error", "code": "internal_error"},
            }
        # Function-call items bill their JSON as text; messages their words (text or audio transcript).
        output_text = sum(len(json.dumps(i)) for i in response["output"] if i.get("type") != "message") // 8
        out_audio = run.audio_ms // AGENT_AUDIO_MS_PER_TOKEN
        out_text = run.text_chars // 4 + output_text
        # Guess: the context the previous response read is served from the cache (a subset of the input counts).
        cached_text, cached_audio = (min(a, b) for a, b in zip(self._cached_input, (in_text, in_audio), strict=True))
        if run.in_conversation:
            self._cached_input = (in_text, in_audio)
        response["usage"] = {
            "total_tokens": in_text + in_audio + out_audio + out_text,
            "input_tokens": in_text + in_audio,
            "output_tokens": out_audio + out_text,
            "input_token_details": {
                "text_tokens": in_text,
                "audio_tokens": in_audio,
                "image_tokens": 0,
                "cached_tokens": cached_text + cached_audio if run.in_conversation else 0,
                "cached_tokens_details": {
                    "text_tokens": cached_text if run.in_conversation else 0,
                    "audio_tokens": cached_audio if run.in_conversation else 0,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }
        if self.active is run:
            self.active = None
        if response["status"] == "completed" and calls and run.in_conversation:
            self.awaiting_calls = calls
            self.follow_up = reply.then or AgentReply(say=self.scenario.tool_ack if self.scenario else DEFAULT_TOOL_ACK)
        await self.send({"type": "response.done", "response": response})
        if self._playing == response["id"] and self._stop_task is None:
            self._stop_task = self._spawn(self._stop_playback_when_played(response["id"]))
        await self._notify()

    def _context_tokens(self) -> tuple[int, int]:
        """(text, audio) input tokens of the conversation a response reads (instructions count as 40 text)."""
        text, audio_tokens = 40, 0
        for item_id, item in self.items.items():
            content = item.get("content") or []
            if item.get("role") == "user" and any(part.get("type") == "input_audio" for part in content):
                spoken = " ".join(part.get("transcript") or "" for part in content)
                audio_tokens += audio.speech_ms(spoken) // CALLER_AUDIO_MS_PER_TOKEN
            elif item_id in self.audio_ms:
                audio_tokens += self.audio_ms[item_id] // AGENT_AUDIO_MS_PER_TOKEN
            else:
                text += len(json.dumps(item)) // 8
        return text, audio_tokens

    # --- playback on the caller's side (call sessions: WebRTC/SIP) ------------------------------------------------

    async def _audio_queued(self, response_id: str, ms: int) -> None:
        """`ms` of a response's audio went to the caller's output buffer; it plays in real time (x time_scale)."""
        if not self.is_call:
            return
        loop = asyncio.get_running_loop()
        if self._playing is None:
            self._playing = response_id
            self._play_until = loop.time()
            await self.send({"type": "output_audio_buffer.started", "response_id": response_id})
        self._play_until = max(self._play_until, loop.time()) + ms / 1000 * self.time_scale

    async def _stop_playback_when_played(self, response_id: str) -> None:
        """`output_audio_buffer.stopped` once the audio has played out: after `response.done`, as upstream."""
        loop = asyncio.get_running_loop()
        while self._playing == response_id and (left := self._play_until - loop.time()) > 0:
            await asyncio.sleep(left)
        self._stop_task = None
        if self._playing == response_id:
            self._playing = None
            await self.send({"type": "output_audio_buffer.stopped", "response_id": response_id})

    async def _clear_playback(self) -> None:
        """The caller talked over the agent: the server drops the audio not yet played (`…cleared`)."""
        if self._playing is None:
            return
        response_id, self._playing = self._playing, None
        if self._stop_task is not None:
            self._stop_task.cancel()
            self._stop_task = None
        await self.send({"type": "output_audio_buffer.cleared", "response_id": response_id})

    async def _add_output_item(self, run: _ResponseRun, item: dict) -> int:
        response = run.response
        index = len(response["output"])
        response["output"].append(item)
        await self.send(
            {"type": "response.output_item.added", "response_id": response["id"], "output_index": index, "item": item}
        )
        if run.in_conversation:
            previous = self._last_item_id
            self.items[item["id"]] = item
            await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        return index

    async def _close_unfinished_items(self, run: _ResponseRun) -> None:
        """A response cut short (cancelled, incomplete, failed) still closes what it had started: the real API
        emits `function_call_arguments.done`, the transcript/text `done` events and `output_item.done` "when a
        Response is interrupted, incomplete, or cancelled" (openai SDK docstrings), the items `incomplete`."""
        rid = run.response["id"]
        for index, item in enumerate(run.response["output"]):
            if item.get("status") != "in_progress":
                continue
            ids = {"response_id": rid, "item_id": item["id"], "output_index": index}
            if item["type"] == "function_call":
                call_id = item["call_id"]
                self.function_calls.setdefault(
                    call_id, {"name": item["name"], "item_id": item["id"], "answered": False}
                )
                await self.send(
                    {
                        "type": "response.function_call_arguments.done",
                        **ids,
                        "call_id": call_id,
                        "name": item["name"],
                        "arguments": item["arguments"],
                    }
                )
            elif item.get("content"):
                part = item["content"][0]
                ids["content_index"] = 0
                if part["type"] == "output_audio":
                    said = run.generated.get(item["id"], part.get("transcript") or "")
                    await self.send({"type": "response.output_audio.done", **ids})
                    await self.send({"type": "response.output_audio_transcript.done", **ids, "transcript": said})
                    await self.send(
                        {"type": "response.content_part.done", **ids, "part": {"type": "audio", "transcript": said}}
                    )
                else:
                    said = part.get("text") or ""
                    await self.send({"type": "response.output_text.done", **ids, "text": said})
                    await self.send(
                        {"type": "response.content_part.done", **ids, "part": {"type": "text", "text": said}}
                    )
            item["status"] = "incomplete"
            await self.send({"type": "response.output_item.done", **ids, "item": item})
            if run.in_conversation:
                await self.send({"type": "conversation.item.done", "item": item})

    async def _finish_output_item(self, run: _ResponseRun, index: int, item: dict) -> None:
        item["status"] = "completed"
        rid = run.response["id"]
        await self.send({"type": "response.output_item.done", "response_id": rid, "output_index": index, "item": item})
        if run.in_conversation:
            await self.send({"type": "conversation.item.done", "item": item})

    async def _speak(self, run: _ResponseRun, text: str, *, finish: bool = True) -> int:
        rid = run.response["id"]
        modality = run.response["output_modalities"][0]
        item: dict[str, Any] = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        index = await self._add_output_item(run, item)
        ids = {"response_id": rid, "item_id": item["id"], "output_index": index, "content_index": 0}
        words = text.split(" ")
        if modality == "text":
            await self.send({"type": "response.content_part.added", **ids, "part": {"type": "text", "text": ""}})
            item["content"] = [{"type": "output_text", "text": ""}]
            for i, word in enumerate(words):
                await self._checkpoint(run)
                delta = word if i == 0 else " " + word
                item["content"][0]["text"] += delta
                run.text_chars += len(delta)
                await self.send({"type": "response.output_text.delta", **ids, "delta": delta})
            await self.send({"type": "response.output_text.done", **ids, "text": text})
            await self.send({"type": "response.content_part.done", **ids, "part": {"type": "text", "text": text}})
            await self._finish_output_item(run, index, item)
            return 0
        fmt = run.response["audio"]["output"]["format"]
        per_ms = audio.bytes_per_ms(fmt)
        total_ms = audio.speech_ms(text)
        pcm = audio.tone(fmt, total_ms)
        chunk = per_ms * AUDIO_CHUNK_MS
        chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)]
        part = {"type": "output_audio", "transcript": ""}
        item["content"] = [part]
        self.audio_ms[item["id"]] = 0
        await self.send({"type": "response.content_part.added", **ids, "part": {"type": "audio", "transcript": ""}})
        self.voice_locked = True
        run.playing = item["id"]
        self._playing_item = item["id"]
        self.playback_started[item["id"]] = asyncio.get_running_loop().time()
        said = 0
        for n, data in enumerate(chunks, start=1):
            await self._checkpoint(run, self.pace * len(data) / per_ms / 1000)
            if not self.is_call:
                # A call's audio goes to the caller over its media (RTP/WebRTC), not as events on the sideband.
                encoded = base64.b64encode(data).decode()
                await self.send({"type": "response.output_audio.delta", **ids, "delta": encoded})
            await self._audio_queued(rid, len(data) // per_ms)
            self.audio_ms[item["id"]] += len(data) // per_ms
            run.audio_ms += len(data) // per_ms
            self.log.audio_bytes_out += len(data)
            upto = round(len(words) * n / len(chunks))
            if upto > said:
                delta = (" " if said else "") + " ".join(words[said:upto])
                said = upto
                part["transcript"] += delta
                run.text_chars += len(delta)
                run.generated[item["id"]] = " ".join(words[:said])
                await self.send({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})
        if not finish:
            return total_ms // 2
        await self.send({"type": "response.output_audio.done", **ids})
        await self.send({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
        await self.send({"type": "response.content_part.done", **ids, "part": {"type": "audio", "transcript": text}})
        await self._finish_output_item(run, index, item)
        return total_ms

    async def _call_tool(self, run: _ResponseRun, call: ToolCall) -> str:
        rid = run.response["id"]
        call_id = new_id("call", 16)
        arguments = json.dumps(call.arguments)
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call_id,
            "arguments": "",
        }
        index = await self._add_output_item(run, item)
        ids = {"response_id": rid, "item_id": item["id"], "output_index": index, "call_id": call_id}
        for start in range(0, len(arguments), ARGUMENT_CHUNK_CHARS):
            await self._checkpoint(run, self.pace * ARGUMENT_CHUNK_SECONDS)
            delta = arguments[start : start + ARGUMENT_CHUNK_CHARS]
            item["arguments"] += delta
            await self.send({"type": "response.function_call_arguments.delta", **ids, "delta": delta})
        self.function_calls[call_id] = {"name": call.name, "item_id": item["id"], "answered": False}
        self.log.function_calls.append(
            {"call_id": call_id, "name": call.name, "arguments": dict(call.arguments), "response_id": rid}
        )
        await self.send(
            {"type": "response.function_call_arguments.done", **ids, "name": call.name, "arguments": arguments}
        )
        await self._finish_output_item(run, index, item)
        return call_id


def _transcription_usage(model: object, transcript: str) -> dict:
    """`usage` of an input transcription: tokens for the gpt-4o transcribe family, audio seconds otherwise
    (SDK `ConversationItemInputAudioTranscriptionCompletedEvent.Usage`: `UsageTranscriptTextUsageTokens` or
    `UsageTranscriptTextUsageDuration`)."""
    speech = audio.speech_ms(transcript)
    if model in TOKEN_BILLED_TRANSCRIPTION:
        audio_tokens = speech // CALLER_AUDIO_MS_PER_TOKEN
        output = max(1, len(transcript) // 4) if transcript else 0
        return {
            "type": "tokens",
            "input_tokens": audio_tokens,
            "output_tokens": output,
            "total_tokens": audio_tokens + output,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
        }
    return {"type": "duration", "seconds": round(speech / 1000, 2)}


async def run_echo(ws: web.WebSocketResponse, log_: SessionLog, session: dict) -> None:
    """Benchmark mode: answer each `input_audio_buffer.append` at once with the same audio as an output delta.

    No validation beyond JSON parsing and no per-frame logging; only byte counters are kept."""
    from aiohttp import WSMsgType

    response_id, item_id = new_id("resp"), new_id("item")
    counter = 0
    head = (
        '{"type":"response.output_audio.delta","response_id":"'
        + response_id
        + '","item_id":"'
        + item_id
        + '","output_index":0,"content_index":0,"event_id":"event_'
    )
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            event = json.loads(msg.data)
        except ValueError:
            continue
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            data = event.get("audio", "")
            counter += 1
            log_.audio_bytes_in += len(data) * 3 // 4 - data[-2:].count("=")
            await ws.send_str(f'{head}{counter}","delta":{json.dumps(data)}}}')
        elif kind == "session.update" and isinstance(event.get("session"), dict):
            counter += 1
            with contextlib.suppress(Exception):  # unvalidated in this mode: keep what merges cleanly
                session = merge_session(session, event["session"])
            updated = {"type": "session.updated", "event_id": f"event_{counter}", "session": session}
            await ws.send_str(json.dumps(updated))
