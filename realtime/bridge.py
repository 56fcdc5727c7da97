"""The phone media bridge's relay core: one Twilio Media Stream <-> one OpenAI Realtime WebSocket.

Transport-agnostic (the Channels consumer in realtime/consumers.py adapts it): the adapter hands over every Twilio
text frame (`on_twilio_text`) and tells it when the socket closed (`on_twilio_closed`); the bridge talks back through
two callables (`send_twilio(text)`, `close_twilio()`).

The per-frame path is deliberately dumb and cheap (measured in bench/bridge.py):
- μ-law base64 passes through untouched both ways; no decoding, no resampling;
- a Twilio `media` frame becomes an `input_audio_buffer.append` by string concatenation (base64 needs no escaping);
- an upstream `response.output_audio.delta` is recognised from its first bytes and relayed without a JSON parse;
- no database, no thread hop and no logging per frame; Twilio marks only every ~100 ms of audio (PlaybackTracker);
  the turn latency (realtime.latency) reads one flag per delta and the response id of a turn's first delta only.
Everything else (transcripts, tools, triage) goes to the call event pipeline on a worker task through
`database_sync_to_async`, so a slow query delays neither the caller's audio nor the agent's.

How a stream ends (the call row always ends: `CallEventPipeline.finish` runs last, whatever happened):
- Twilio `stop` / socket gone: the caller hung up; but once the REST redirect of a transfer is on its way, Twilio's
  `stop` is that redirect taking the call (it may beat the REST answer), and the call is recorded as transferred;
- OpenAI refuses the session.update (or does not confirm it within SESSION_CONFIRM_LIMIT): the greeting is never
  sent, the refusal code is recorded on the call, and the stream ends as an upstream failure (below);
- `end_call`: the goodbye audio is allowed to finish playing, the stream is marked "goodbye", then we close;
- a transfer to staff: the agent's short line plays, Twilio's REST API redirects the call to a <Dial>, the stream is
  marked "transfer", then we close;
- OpenAI closes or fails: we close the Twilio socket WITHOUT a mark, so Twilio fetches /twilio/stream-ended and the
  caller gets the fallback TwiML (staff, or voicemail) instead of silence;
- the clinic's max call length: same as an upstream failure from the caller's side (fallback), reason "timeout".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from channels.db import database_sync_to_async
from django.conf import settings

from calls.audit import audit_actor_for_task
from calls.models import Call
from calls.services import call_upstream_error_record
from core import jsonsafe
from core.observability import call_context
from organizations.models import Organization
from realtime.latency import TurnClock
from realtime.pipeline import CallEventPipeline, wants
from realtime.prompt import response_instructions
from realtime.session import (
    PCMU,
    SESSION_ACCEPTED,
    build_session,
    new_session_update_id,
    session_update_event,
    session_update_outcome,
)
from realtime.telephony.playback import PlaybackTracker
from realtime.telephony.rest import TwilioRestError, atransfer_call
from realtime.telephony.services import stream_end_mark, stream_token_consume
from realtime.upstream import realtime_ws_url, ws_headers

logger = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[], Awaitable[None]]

DEADLINE_CHECK_SECONDS = 5.0
UPSTREAM_OPEN_TIMEOUT = 5.0
SESSION_CONFIRM_LIMIT = 2.0  # OpenAI answers a session.update within a fraction of a second
SESSION_CONFIRM_TIMEOUT = "session_update_timeout"  # recorded when no answer came in time
GOODBYE_PLAYOUT_LIMIT = 15.0  # never hold a line open longer than this for audio Twilio did not confirm
TRANSFER_LINE_LIMIT = 10.0  # the agent's "let me get someone" line; transfer even if it runs long
PIPELINE_DRAIN_LIMIT = 5.0
MALFORMED_FRAME_LIMIT = 20  # frames Twilio would never send, ignored per stream before the call is ended
SESSION_LIMIT_CLOSE = 1001  # OpenAI: "Your session hit the maximum duration of 60 minutes."

_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_AUDIO_DELTA_TYPE = '"type":"response.output_audio.delta"'
_ITEM_KEY = '"item_id":"'
_RESPONSE_KEY = '"response_id":"'
_DELTA_KEY = '"delta":"'
_PAYLOAD_KEY = '"payload":"'
_MEDIA_PREFIX = '{"event":"media"'


def default_greeting(call: Call) -> str:
    return f"Thank you for calling {call.organization.name}. How can I help you today?"


def greeting_event(greeting: str, organization: Organization) -> dict:
    """The agent speaks first: one response whose instructions are to say the clinic's greeting (with the clinic's
    language rule: per-response instructions replace the session's)."""
    text = "Greet the caller now. Say exactly this greeting, in a warm and natural voice, and nothing else: " + greeting
    return {"type": "response.create", "response": {"instructions": response_instructions(organization, text)}}


def _base64_len(data: str) -> int:
    """Decoded size of a base64 string without decoding it."""
    return len(data) * 3 // 4 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)


# --- database steps (small, sync, run through database_sync_to_async) ---------------------------------------------


def _start_call(call_id: object, token: object) -> tuple[Call, dict, dict, str] | None:
    """Consume the one-time stream token; returns (call, session.update, the greeting's response.create, clinic
    number) or None."""
    call = stream_token_consume(call_id, token)
    if call is None:
        return None
    session = session_update_event(
        build_session(call.organization, audio_format=PCMU), event_id=new_session_update_id()
    )
    greeting = call.organization.agent_greeting.strip() or default_greeting(call)
    number = str(call.metadata.get("twilio", {}).get("number") or "")
    return call, session, greeting_event(greeting, call.organization), number


async def _session_refusal(upstream: Any, event_id: str) -> str | None:
    """Wait (bounded) for OpenAI's answer to our session.update: None once `session.updated` came, else the refusal's
    code, or SESSION_CONFIRM_TIMEOUT. Nothing else is expected before it but `session.created`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SESSION_CONFIRM_LIMIT
    while (left := deadline - loop.time()) > 0:
        try:
            raw = await asyncio.wait_for(upstream.recv(), timeout=left)
        except TimeoutError:
            break
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            continue
        outcome = session_update_outcome(event, event_id) if isinstance(event, dict) else None
        if outcome == SESSION_ACCEPTED:
            return None
        if outcome is not None:
            return outcome
    return SESSION_CONFIRM_TIMEOUT


class MediaBridge:
    """One phone call's relay: create it per socket, feed it Twilio frames, await `shutdown()` once it closed."""

    def __init__(self, *, send_twilio: SendText, close_twilio: Close, mark_every_ms: int = 100) -> None:
        self._send_twilio = send_twilio
        self._close_twilio = close_twilio
        self.tracker = PlaybackTracker(mark_every_ms=mark_every_ms)
        self.stream_sid = ""
        self.call: Call | None = None
        self.pipeline: CallEventPipeline | None = None
        self.upstream: Any = None  # websockets ClientConnection once open
        self._media_head = ""  # '{"event":"media","streamSid":"MZ…","media":{"payload":"'
        self._mark_head = ""
        self._started = False  # a `start` was seen (one stream per socket, one token use)
        self._ending = False
        self._twilio_closed = False
        self._end_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._events: asyncio.Queue[tuple[dict, int | None] | None] = asyncio.Queue()  # event, turn latency (ms)
        self.turn_clock = TurnClock()
        self._worker: asyncio.Task | None = None
        self._responses_done = 0
        self._transfer_started = False
        self._transfer_task: asyncio.Task | None = None
        self._redirect_sent = False  # the REST redirect is on its way: Twilio's `stop` is the transfer, not a hang-up
        self._twilio_stopped = False
        self._clinic_number = ""
        self._malformed_frames = 0

    # --- Twilio -> bridge -----------------------------------------------------------------------------------------

    async def on_twilio_text(self, text: str) -> None:
        # Hot path: a media frame after the stream started. Base64 contains no quote, so slicing is exact.
        if text.startswith(_MEDIA_PREFIX) and self.upstream is not None:
            start = text.find(_PAYLOAD_KEY)
            if start != -1:
                start += 11
                end = text.find('"', start)
                if end == -1:  # cut off inside the payload
                    self.malformed_frame()
                    return
                if not self._ending:
                    try:  # noqa: SIM105 - hot path: no context manager per frame
                        await self.upstream.send(_APPEND_HEAD + text[start:end] + '"}')
                    except websockets.ConnectionClosed:
                        pass  # the upstream reader notices and ends the call
                return
        try:
            message = jsonsafe.loads(text)  # start/mark/stop reach the database: strict, storable JSON only
        except jsonsafe.UnsafeInput:
            self.malformed_frame()
            return
        if not isinstance(message, dict):
            self.malformed_frame()
            return
        event = message.get("event")
        if event == "media":
            payload = (message.get("media") or {}).get("payload")
            if isinstance(payload, str) and self.upstream is not None and not self._ending:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await self.upstream.send(_APPEND_HEAD + payload.replace('"', "") + '"}')
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if isinstance(name, str):
                self.tracker.on_mark(name)
        elif event == "start":
            await self._on_start(message)
        elif event == "stop":
            self._twilio_stopped = True
            if self._redirect_sent:
                return  # Twilio ends the stream itself when the redirect takes the call; _transfer records it
            self._end_soon(Call.EndReason.CALLER_HANGUP, close=True)

    def malformed_frame(self) -> None:
        """A frame Twilio never sends (not JSON, cut off, unstorable text): ignored, up to MALFORMED_FRAME_LIMIT per
        stream. Past that the socket is broken or not Twilio's: the call ends as failed, the upstream and the
        Twilio socket close (without a mark, so Twilio plays the fallback if a caller is still there)."""
        self._malformed_frames += 1
        if self._malformed_frames == 1:
            logger.info("media stream: malformed frame ignored")
        if self._malformed_frames == MALFORMED_FRAME_LIMIT + 1:
            logger.warning("media stream: %d malformed frames, ending the call (protocol)", self._malformed_frames)
            self._end_soon(Call.EndReason.ERROR, close=True)

    async def _on_start(self, message: dict) -> None:
        if self._started:
            return  # one stream per call: a second `start` on the socket is ignored
        self._started = True
        audit_actor_for_task("twilio")  # the call's transcript, intake and escalations are written for Twilio
        start = message.get("start") or {}
        self.stream_sid = str(start.get("streamSid") or message.get("streamSid") or "")
        params = start.get("customParameters") or {}
        started = await database_sync_to_async(_start_call)(params.get("call_id"), params.get("stream_token"))
        if started is None:
            logger.warning("media stream refused: missing, unknown or reused stream token")
            self._ending = True
            await self._close_twilio()
            return
        call, session_update, greeting_create, self._clinic_number = started
        self.call = call
        self.pipeline = CallEventPipeline(call)
        self._media_head = '{"event":"media","streamSid":"' + self.stream_sid + '","media":{"payload":"'
        self._mark_head = '{"event":"mark","streamSid":"' + self.stream_sid + '","mark":{"name":"'
        with call_context(call.pk):
            try:
                upstream = await websockets.connect(
                    realtime_ws_url(model=settings.REALTIME_MODEL),
                    additional_headers=ws_headers(),
                    open_timeout=UPSTREAM_OPEN_TIMEOUT,
                    max_size=16 * 1024 * 1024,
                    compression=None,  # audio does not compress; deflate would only cost CPU per frame
                )
                self.upstream = upstream  # from here on, ending the call closes it
                await upstream.send(json.dumps(session_update))
                refusal = await _session_refusal(upstream, session_update["event_id"])
                if refusal is None:
                    await upstream.send(json.dumps(greeting_create))
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                logger.warning("upstream connect failed: %s", type(exc).__name__)
                self._end_soon(Call.EndReason.ERROR, close=True)
                return
            if refusal is not None:
                # Without the clinic's session the caller would get 24 kHz PCM on a μ-law line, no prompt and no
                # tools: let Twilio go (no stream_end_mark), so /twilio/stream-ended plays the fallback.
                logger.warning("session.update refused code=%s", refusal)
                with contextlib.suppress(Exception):
                    await database_sync_to_async(call_upstream_error_record)(
                        call=call, event="session.update", code=refusal
                    )
                self._end_soon(Call.EndReason.ERROR, close=True)
                return
            logger.info("media stream bridged")
        self._spawn(self._read_upstream())
        self._worker = self._spawn(self._run_pipeline())
        self._spawn(self._watch_deadline())

    # --- OpenAI -> bridge -----------------------------------------------------------------------------------------

    async def _read_upstream(self) -> None:
        upstream = self.upstream
        tracker = self.tracker
        clock = self.turn_clock
        send = self._send_twilio
        try:
            async for raw in upstream:
                if isinstance(raw, bytes):
                    continue
                # Hot path: an audio delta, recognised without parsing (the type sits in the first ~100 chars).
                if _AUDIO_DELTA_TYPE in raw[:120]:
                    d = raw.find(_DELTA_KEY)
                    i = raw.find(_ITEM_KEY)
                    if d != -1 and i != -1:
                        d += 9
                        delta = raw[d : raw.index('"', d)]
                        i += 11
                        if clock.waiting_for_audio:
                            self._first_audio(raw)
                        await self._forward_audio(raw[i : raw.index('"', i)], delta, send, tracker)
                        continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    await self._on_upstream_event(event)
        except websockets.ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        if not self._ending:
            code = upstream.close_code
            logger.warning("upstream closed code=%s", code)
            session_limit = code == SESSION_LIMIT_CLOSE and "maximum duration" in (upstream.close_reason or "")
            reason = Call.EndReason.TIMEOUT if session_limit else Call.EndReason.ERROR
            # No stream_end_mark: Twilio then asks /twilio/stream-ended and the caller hears the fallback.
            self._end_soon(reason, close=True)

    async def _forward_audio(self, item_id: str, delta: str, send: SendText, tracker: PlaybackTracker) -> None:
        if self._twilio_closed:
            return
        await send(self._media_head + delta + '"}}')
        mark = tracker.on_audio(item_id, 0, _base64_len(delta))
        if mark is not None:
            await send(self._mark_head + mark + '"}}')

    def _first_audio(self, raw: str) -> None:
        """A turn's first agent audio reached us (once per turn, so the response id is looked up only here)."""
        r = raw.find(_RESPONSE_KEY)
        response_id = raw[r + 15 : raw.find('"', r + 15)] if r != -1 else ""
        self.turn_clock.audio(response_id, asyncio.get_running_loop().time())

    async def _on_upstream_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            delta = event.get("delta")
            if isinstance(delta, str):
                self.turn_clock.audio(str(event.get("response_id") or ""), asyncio.get_running_loop().time())
                await self._forward_audio(str(event.get("item_id") or ""), delta, self._send_twilio, self.tracker)
            return
        if kind == "input_audio_buffer.speech_started":
            await self._barge_in()
        elif kind == "input_audio_buffer.speech_stopped":
            self.turn_clock.speech_stopped(asyncio.get_running_loop().time())
        elif kind == "response.created":
            self.turn_clock.response_created(str((event.get("response") or {}).get("id") or ""))
        elif kind == "response.output_audio.done":
            mark = self.tracker.flush()  # the tail of the item gets a mark too
            if mark is not None and not self._twilio_closed:
                await self._send_twilio(self._mark_head + mark + '"}}')
        latency = None
        if kind == "response.done":
            self._responses_done += 1
            latency = self.turn_clock.take(str((event.get("response") or {}).get("id") or ""))
        if isinstance(kind, str) and wants(kind):
            self._events.put_nowait((event, latency))

    async def _barge_in(self) -> None:
        """The caller talks over the agent: drop Twilio's queued audio, and cut the unheard part from the
        conversation (audio_end_ms = what mark echoes confirmed played, clamped to what was produced)."""
        truncation = self.tracker.on_speech_started()
        if truncation is None:
            return
        if not self._twilio_closed:
            await self._send_twilio('{"event":"clear","streamSid":"' + self.stream_sid + '"}')
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.upstream.send(json.dumps(truncation.event()))

    # --- the call event pipeline (off the audio path) -------------------------------------------------------------

    async def _run_pipeline(self) -> None:
        assert self.pipeline is not None
        handle = database_sync_to_async(self.pipeline.handle)
        while True:
            try:  # a steer waiting for response.done goes out when its bounded wait is over (pipeline.wake_in)
                queued = await asyncio.wait_for(self._events.get(), self.pipeline.wake_in())
            except TimeoutError:
                queued = ({}, None)
            if queued is None:
                return
            event, latency = queued
            try:
                result = await handle(event, turn_latency_ms=latency) if event else self.pipeline.poll()
            except Exception:  # one bad event must not end the caller's call
                logger.exception("pipeline failed on %s", event.get("type"))
                continue
            for client_event in result.client_events:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await self.upstream.send(json.dumps(client_event))
            if result.transfer_to and not self._transfer_started:  # the clinic's policy decided (calls.conversation)
                self._transfer_started = True
                self._transfer_task = self._spawn(self._transfer(result.transfer_to, self._responses_done))
            if result.ended:
                self._end_soon(Call.EndReason.AGENT_ENDED, close=True, outcome="goodbye", play_out=True)

    async def _transfer(self, to_number: str, responses_done_before: int) -> None:
        """Let the agent say its short line, then redirect the call to staff through Twilio's REST API."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRANSFER_LINE_LIMIT
        quiet_since = loop.time()
        assert self.pipeline is not None
        while loop.time() < deadline and not self._ending:
            busy = self.pipeline.response_active or self.tracker.is_playing
            if busy:
                quiet_since = loop.time()
            elif self._responses_done > responses_done_before or loop.time() - quiet_since > 1.5:
                break  # the line was said and heard (or the model had nothing to say)
            await asyncio.sleep(0.05)
        if self._ending or self.call is None:
            return
        self._redirect_sent = True
        try:
            await atransfer_call(self.call, to_number, caller_id=self._clinic_number or to_number)
        except (TwilioRestError, ValueError) as exc:
            # The agent already told the caller staff were alerted and keeps the call going: nobody is dropped.
            logger.warning("transfer failed: %s", getattr(exc, "code", type(exc).__name__))
            self._redirect_sent = False
            if self._twilio_stopped or self._twilio_closed:  # the stream went meanwhile: the caller hung up
                self._end_soon(Call.EndReason.CALLER_HANGUP, close=True)
            return
        logger.info("call transferred to staff")
        self._end_soon(Call.EndReason.TRANSFERRED, close=True, outcome="transfer")

    async def _watch_deadline(self) -> None:
        assert self.pipeline is not None
        check = database_sync_to_async(self.pipeline.check_deadline)
        while not self._ending:
            await asyncio.sleep(DEADLINE_CHECK_SECONDS)
            if self._ending:
                return
            if await check():
                logger.info("call reached the clinic's max length")
                self._end_soon(Call.EndReason.TIMEOUT, close=True)
                return

    # --- ending ---------------------------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _end_soon(self, reason: str, *, close: bool, outcome: str | None = None, play_out: bool = False) -> None:
        if self._end_task is None:
            self._end_task = asyncio.ensure_future(self._end(reason, close=close, outcome=outcome, play_out=play_out))

    async def _end(self, reason: str, *, close: bool, outcome: str | None, play_out: bool) -> None:
        if play_out:
            # The goodbye: wait until Twilio echoed every mark (the audio was heard), bounded.
            mark = self.tracker.flush()
            if mark is not None and not self._twilio_closed:
                with contextlib.suppress(Exception):
                    await self._send_twilio(self._mark_head + mark + '"}}')
            loop = asyncio.get_running_loop()
            limit = loop.time() + GOODBYE_PLAYOUT_LIMIT
            while self.tracker.is_playing and not self._twilio_closed and loop.time() < limit:
                await asyncio.sleep(0.05)
        self._ending = True
        try:
            if self.upstream is not None:
                with contextlib.suppress(Exception):
                    await self.upstream.close()
            if self._worker is not None:
                self._events.put_nowait(None)  # let queued transcripts land before the call ends
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._worker), PIPELINE_DRAIN_LIMIT)
            if self.call is not None and outcome is not None:
                await database_sync_to_async(stream_end_mark)(call=self.call, outcome=outcome)
        finally:
            if self.pipeline is not None:
                try:
                    await database_sync_to_async(self.pipeline.finish)(reason)
                except Exception:
                    logger.exception("could not end the call")
            current = asyncio.current_task()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
            if close and not self._twilio_closed:
                with contextlib.suppress(Exception):
                    await self._close_twilio()
            if self.call is not None:
                with call_context(self.call.pk):
                    logger.info("media stream ended reason=%s outcome=%s", reason, outcome or "-")

    async def shutdown(self) -> None:
        """Called once the Twilio socket is closed: make sure everything ended and the call row is terminal."""
        self._twilio_closed = True
        transfer = self._transfer_task
        if self._redirect_sent and transfer is not None and not transfer.done():
            # Twilio let go of the stream because our redirect took the call: wait for the REST answer (bounded by
            # its timeout), so the call is recorded as transferred, not as a hang-up.
            with contextlib.suppress(Exception):
                await asyncio.shield(transfer)
        self._end_soon(Call.EndReason.CALLER_HANGUP, close=False)
        assert self._end_task is not None
        with contextlib.suppress(Exception):
            await asyncio.shield(self._end_task)
