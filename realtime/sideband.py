"""The server's sideband connection to a browser or SIP call (`wss://…/realtime?call_id=rtc_…`).

The browser (WebRTC) or the phone network (SIP, realtime/sip.py) carries the audio straight to OpenAI; this
connection sees every server event of the call, feeds the call event pipeline, and sends back tool outputs and
steering. It lives as an asyncio task on the ASGI server's event loop until the call ends. Database work runs in
`sync_to_async` helpers; audio never comes here.

A SIP call (`SipCall`) also: greets first (nobody else starts the conversation), carries out the pipeline's transfer
decisions with `refer` once the agent's short line has played (a failed refer keeps the caller with the agent), and
ends with `hangup` after the goodbye played, as a browser call does.
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
from calls.services import call_metadata_merge, call_upstream_error_record
from core import drain
from core.observability import call_context
from organizations.vocabulary import EscalationLevel
from realtime.latency import TurnClock
from realtime.pipeline import CallEventPipeline, PipelineResult, wants
from realtime.session import build_session, new_session_update_id, session_update_event, session_update_outcome
from realtime.upstream import UpstreamError, call_hangup, call_refer, realtime_ws_url, ws_headers

logger = logging.getLogger(__name__)

_running: dict[str, asyncio.Task] = {}  # call id -> task; also keeps tasks from being garbage-collected
DEADLINE_CHECK_SECONDS = 5.0
GOODBYE_TAIL_LIMIT = 10.0  # never keep a finished call's sideband open longer than this
GOODBYE_TAIL_QUIET = 1.0  # without output_audio_buffer events, a quiet second ends the tail
GOODBYE_TRANSCRIPT_GRACE = 2.0  # after the goodbye stopped playing, for the transcript of words said over it
TRANSFER_LINE_LIMIT = 15.0  # the longest a transfer waits for the agent's short line to be said and heard
REFER_ANSWER_LIMIT = 10.0  # how long a closed session waits for the REFER's answer to know it was a transfer
TRANSFER_QUIET = 1.5  # ... or for this long with nothing said or playing (the model had nothing to say)
TRANSFER_FAILED_NOTE = (
    "Clinic system note: the transfer to staff did not go through. Tell the caller briefly that staff have been "
    "alerted and will call back, and make sure you have their name and callback number."
)


class SipCall:
    """What a SIP call's sideband does beyond the browser's: greet, transfer with `refer`."""

    def __init__(self, *, openai_call_id: str, greeting: dict, forward_to: str = "") -> None:
        self.openai_call_id = openai_call_id
        self.greeting = greeting
        self.forward_to = forward_to  # after hours, forward_on_call: refer once the greeting played
        self.playing = False  # agent audio in the output buffer (output_audio_buffer.started .. stopped/cleared)
        self.responses_done = 0
        self.transfer_task: asyncio.Task | None = None
        self.transferred = False
        self.referring = False  # the REFER request is on its way

    def observe(self, event_type: str) -> None:
        if event_type == "output_audio_buffer.started":
            self.playing = True
        elif event_type in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            self.playing = False
        elif event_type == "response.done":
            self.responses_done += 1

    def transfer(self, to_number: str, *, leg: str, upstream: Any, pipeline: CallEventPipeline) -> None:
        """Start the transfer (once at a time): after the agent's line, `refer` to `tel:<to_number>`."""
        if self.transfer_task is not None and not self.transfer_task.done():
            return
        self.transfer_task = asyncio.get_running_loop().create_task(
            self._transfer(to_number, leg, upstream, pipeline, self.responses_done)
        )

    async def _transfer(
        self, to_number: str, leg: str, upstream: Any, pipeline: CallEventPipeline, responses_done_before: int
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRANSFER_LINE_LIMIT
        quiet_since = loop.time()
        while loop.time() < deadline and not pipeline.ended:
            if pipeline.response_active or self.playing:
                quiet_since = loop.time()
            elif self.responses_done > responses_done_before or loop.time() - quiet_since > TRANSFER_QUIET:
                break  # the line was said and heard (or the model had nothing to say)
            await asyncio.sleep(0.05)
        if await sync_to_async(pipeline.refresh)():
            return
        if pipeline.call.escalation_level == EscalationLevel.EMERGENCY:
            logger.info("transfer dropped: the call became an emergency (the caller was told to call 911)")
            return
        self.referring = True
        try:
            await call_refer(self.openai_call_id, f"tel:{to_number}")
        except UpstreamError as exc:
            self.referring = False
            logger.warning("sip refer failed code=%s leg=%s", exc.code, leg)
            await sync_to_async(call_metadata_merge)(
                call=pipeline.call, key="sip", fields={"transfer": {"leg": leg, "outcome": "failed"}}
            )
            result = await sync_to_async(pipeline.system_note)(TRANSFER_FAILED_NOTE)
            with contextlib.suppress(websockets.ConnectionClosed):
                for client_event in result.client_events:
                    await upstream.send(json.dumps(client_event))
            return
        logger.info("sip call referred leg=%s", leg)
        self.transferred = True
        await sync_to_async(call_metadata_merge)(
            call=pipeline.call, key="sip", fields={"transfer": {"leg": leg, "outcome": "referred"}}
        )
        await sync_to_async(pipeline.finish)(Call.EndReason.TRANSFERRED)
        await upstream.close()


def _load_pipeline(call_id: str) -> CallEventPipeline:
    call = Call.objects.select_related("organization").get(pk=call_id)
    return CallEventPipeline(call)


def _session_update(pipeline: CallEventPipeline) -> dict:
    return session_update_event(build_session(pipeline.organization), event_id=new_session_update_id())


async def run_sideband(
    call_id: str, openai_call_id: str, *, open_timeout: float = 5.0, sip: SipCall | None = None
) -> Call:
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
                update_id = ""
                if sip is None:
                    update = await sync_to_async(_session_update)(pipeline)
                    update_id = update["event_id"]
                    await upstream.send(json.dumps(update))
                else:  # the accept carried the session; the agent speaks first
                    await upstream.send(json.dumps(sip.greeting))
                    if sip.forward_to:
                        sip.transfer(sip.forward_to, leg="on_call", upstream=upstream, pipeline=pipeline)
                reason = await _pump(upstream, pipeline, session_update_id=update_id, sip=sip)
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            logger.warning("sideband failed: %s", type(exc).__name__)
            reason = Call.EndReason.ERROR
            if sip is not None and not pipeline.ended:
                await sync_to_async(call_metadata_merge)(
                    call=pipeline.call, key="sip", fields={"failure": "sideband_failed"}
                )
        if sip is not None and sip.transfer_task is not None and not sip.transfer_task.done():
            if sip.referring:  # OpenAI may close the session as the REFER takes the call, before it answers us
                await asyncio.wait({sip.transfer_task}, timeout=REFER_ANSWER_LIMIT)
            sip.transfer_task.cancel()
        if sip is not None and sip.transferred:
            reason = Call.EndReason.TRANSFERRED  # OpenAI ends the session once the REFER took the call
        if not pipeline.ended:
            await sync_to_async(pipeline.finish)(reason)
        if reason not in (Call.EndReason.CALLER_HANGUP, Call.EndReason.TRANSFERRED):
            await call_hangup(openai_call_id)
        logger.info("sideband closed reason=%s", reason)
        return pipeline.call


async def _pump(
    upstream: ClientConnection, pipeline: CallEventPipeline, *, session_update_id: str = "", sip: SipCall | None = None
) -> str:
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
            if sip is not None and sip.transferred:
                return Call.EndReason.TRANSFERRED
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
        if sip is not None:
            sip.observe(event_type)
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
        if sip is not None and result.transfer_to and not result.ended:
            sip.transfer(result.transfer_to, leg="escalation", upstream=upstream, pipeline=pipeline)
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


def attach(call_id: str, openai_call_id: str, *, sip: SipCall | None = None) -> bool:
    """Start the sideband task on the running loop (an async view's). False when one already runs for the call."""
    if call_id in _running and not _running[call_id].done():
        return False
    # A fresh context: the task outlives the request, and the request's context carries the executor of its sync
    # middleware thread (asgiref), which is gone once the answer is sent ("CurrentThreadExecutor already quit").
    task = asyncio.get_running_loop().create_task(
        run_sideband(call_id, openai_call_id, sip=sip), name=f"sideband-{call_id}", context=contextvars.Context()
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
