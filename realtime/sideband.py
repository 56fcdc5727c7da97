"""The server's sideband connection to a browser call (`wss://…/realtime?call_id=rtc_…`).

The browser carries only audio (WebRTC straight to OpenAI); this connection sees every server event of the call,
feeds the call event pipeline, and sends back tool outputs and steering. It lives as an asyncio task on the ASGI
server's event loop until the call ends. Database work runs in `sync_to_async` helpers; audio never comes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from typing import Any

import websockets
from asgiref.sync import sync_to_async
from websockets.asyncio.client import ClientConnection

from calls.audit import audit_actor
from calls.models import Call
from calls.services import call_upstream_error_record
from core import drain
from core.observability import call_context
from realtime.latency import TurnClock
from realtime.pipeline import CallEventPipeline, PipelineResult, wants
from realtime.session import build_session, new_session_update_id, session_update_event, session_update_outcome
from realtime.upstream import call_hangup, realtime_ws_url, ws_headers

logger = logging.getLogger(__name__)

_running: dict[str, asyncio.Task] = {}  # call id -> task; also keeps tasks from being garbage-collected
DEADLINE_CHECK_SECONDS = 5.0
GOODBYE_TAIL_LIMIT = 10.0  # never keep a finished call's sideband open longer than this
GOODBYE_TAIL_QUIET = 1.0  # without output_audio_buffer events, a quiet second ends the tail
GOODBYE_TRANSCRIPT_GRACE = 2.0  # after the goodbye stopped playing, for the transcript of words said over it


def _load_pipeline(call_id: str) -> CallEventPipeline:
    call = Call.objects.select_related("organization").get(pk=call_id)
    return CallEventPipeline(call)


def _session_update(pipeline: CallEventPipeline) -> dict:
    return session_update_event(build_session(pipeline.organization), event_id=new_session_update_id())


async def run_sideband(call_id: str, openai_call_id: str, *, open_timeout: float = 5.0) -> Call:
    """Attach to the call upstream and run it to its end. Returns the ended call."""
    pipeline = await sync_to_async(_load_pipeline)(call_id)
    with call_context(call_id), audit_actor("openai-sideband"):
        try:
            async with websockets.connect(
                realtime_ws_url(call_id=openai_call_id),
                additional_headers=ws_headers(),
                open_timeout=open_timeout,
                max_size=4 * 1024 * 1024,
            ) as upstream:
                logger.info("sideband attached")
                update = await sync_to_async(_session_update)(pipeline)
                await upstream.send(json.dumps(update))
                reason = await _pump(upstream, pipeline, session_update_id=update["event_id"])
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            logger.warning("sideband failed: %s", type(exc).__name__)
            reason = Call.EndReason.ERROR
        if not pipeline.ended:
            await sync_to_async(pipeline.finish)(reason)
        if reason != Call.EndReason.CALLER_HANGUP:
            await call_hangup(openai_call_id)
        logger.info("sideband closed reason=%s", reason)
        return pipeline.call


async def _pump(upstream: ClientConnection, pipeline: CallEventPipeline, *, session_update_id: str = "") -> str:
    """Relay events until the call ends; returns the end reason.

    A refused session.update does not end the call: the browser's session was already configured when its secret
    was minted (with the same settings), so the call goes on, but the refusal is recorded on the call."""
    handle = sync_to_async(pipeline.handle)
    audio_buffer_events = False  # WebRTC/SIP sessions report playback (output_audio_buffer.*) on the sideband
    clock = TurnClock()  # the agent's first audio of a turn is output_audio_buffer.started here
    loop = asyncio.get_running_loop()
    while True:
        wake_in = pipeline.wake_in()  # a steer waiting for response.done goes out when its bounded wait is over
        try:
            raw = await asyncio.wait_for(upstream.recv(), timeout=min(DEADLINE_CHECK_SECONDS, wake_in or 1e9))
        except TimeoutError:
            if wake_in is not None:
                for client_event in pipeline.poll().client_events:
                    await upstream.send(json.dumps(client_event))
            # Quiet line: end at the clinic's max call length, or when the call was ended elsewhere
            # (POST /api/call/end, staff).
            if await sync_to_async(pipeline.check_deadline)():
                return Call.EndReason.TIMEOUT
            if await sync_to_async(pipeline.refresh)():
                return pipeline.call.end_reason or Call.EndReason.CALLER_HANGUP
            continue
        except websockets.ConnectionClosedOK as closed:
            # 1001 "Your session hit the maximum duration of 60 minutes." is OpenAI's cap, not the caller
            # (docs/facts.md#session-cap); websockets raises ConnectionClosedOK for 1001 as for 1000.
            if closed.rcvd is not None and closed.rcvd.code == 1001 and "maximum duration" in closed.rcvd.reason:
                return Call.EndReason.TIMEOUT
            return Call.EndReason.CALLER_HANGUP
        except websockets.ConnectionClosed:
            return Call.EndReason.ERROR
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if not isinstance(event, dict):
            continue
        event_type = str(event.get("type"))
        audio_buffer_events = audio_buffer_events or event_type.startswith("output_audio_buffer.")
        latency = _clock_event(clock, event_type, event, loop.time())
        if event_type == "error" and (refusal := session_update_outcome(event, session_update_id)):
            logger.warning("sideband session.update refused code=%s", refusal)
            await sync_to_async(call_upstream_error_record)(call=pipeline.call, event="session.update", code=refusal)
            continue
        if not wants(event_type):
            continue
        result: PipelineResult = await handle(event, turn_latency_ms=latency)
        # A socket closed under a send (the caller hung up as a tool output went out) is read as a close by the next
        # recv, not as a failed call.
        with contextlib.suppress(websockets.ConnectionClosed):
            for client_event in result.client_events:
                await upstream.send(json.dumps(client_event))
        if result.ended:
            await _goodbye_tail(upstream, handle, clock, wait_for_playback=audio_buffer_events)
            return Call.EndReason.AGENT_ENDED
        if await sync_to_async(pipeline.check_deadline)():
            return Call.EndReason.TIMEOUT


def _clock_event(clock: TurnClock, event_type: str, event: dict, now: float) -> int | None:
    """Feed the turn clock; the measured latency at a response.done (None otherwise)."""
    if event_type == "input_audio_buffer.speech_stopped":
        clock.speech_stopped(now)
    elif event_type == "response.created":
        clock.response_created(str((event.get("response") or {}).get("id") or ""))
    elif event_type == "output_audio_buffer.started":
        clock.audio(str(event.get("response_id") or ""), now)
    elif event_type == "response.done":
        return clock.take(str((event.get("response") or {}).get("id") or ""))
    return None


async def _goodbye_tail(upstream: Any, handle: Any, clock: TurnClock, *, wait_for_playback: bool) -> None:
    """After end_call, keep listening while the goodbye plays: what the caller says over it is transcribed after the
    response (input transcription is asynchronous), and those words must still be stored and triaged. Ends when the
    audio stopped (plus a short grace for its transcript), after a quiet second, or at GOODBYE_TAIL_LIMIT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GOODBYE_TAIL_LIMIT
    quiet = GOODBYE_TAIL_LIMIT if wait_for_playback else GOODBYE_TAIL_QUIET
    while (left := deadline - loop.time()) > 0:
        try:
            raw = await asyncio.wait_for(upstream.recv(), timeout=min(quiet, left))
        except (TimeoutError, websockets.ConnectionClosed):
            return
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if not isinstance(event, dict):
            continue
        event_type = str(event.get("type"))
        latency = _clock_event(clock, event_type, event, loop.time())  # the goodbye answered a turn too
        if event_type in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            # Played out, or cut by the caller talking over it: only that speech's transcript is still to come.
            deadline = min(deadline, loop.time() + GOODBYE_TRANSCRIPT_GRACE)
        elif wants(event_type):
            await handle(event, turn_latency_ms=latency)


def attach(call_id: str, openai_call_id: str) -> bool:
    """Start the sideband task on the running loop (an async view's). False when one already runs for the call."""
    if call_id in _running and not _running[call_id].done():
        return False
    # A fresh context: the task outlives the request, and the request's context carries the executor of its sync
    # middleware thread (asgiref), which is gone once the answer is sent ("CurrentThreadExecutor already quit").
    task = asyncio.get_running_loop().create_task(
        run_sideband(call_id, openai_call_id), name=f"sideband-{call_id}", context=contextvars.Context()
    )
    _running[call_id] = task
    live_key = drain.call_opened(call_id)  # a live call of this process until the task ends (deploy drain)

    def _done(_task: asyncio.Task) -> None:
        _running.pop(call_id, None)
        drain.call_closed(live_key)

    task.add_done_callback(_done)
    return True


async def stop_all() -> None:
    for task in list(_running.values()):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
