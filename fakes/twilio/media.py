"""The Media Streams side of a fake Twilio: a WebSocket client that behaves like Twilio on a <Connect><Stream>.

It signs the upgrade like Twilio (X-Twilio-Signature over the wss:// URL with no params), sends `connected`,
`start` (with the stream token and call id as customParameters), then 20 ms μ-law `media` frames at 50 frames/s,
and finally `stop`. Audio it receives is queued on a simulated playout clock: a `mark` is echoed once the audio
queued before it would have played (or at once in fast mode), and `clear` drops the queue (echoing the marks it
discarded when `echo_marks_on_clear`). Everything it receives is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, Required, TypedDict, Unpack

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakes.twilio.audio import FRAME_BYTES, SAMPLE_RATE, frames
from fakes.twilio.runner import LoopThread
from fakes.twilio.webhooks import new_call_sid, sign

FRAME_SECONDS = FRAME_BYTES / SAMPLE_RATE  # 0.02


class StreamRegistry(Protocol):
    """Where a stream announces itself so a REST redirect of its call can end it (fakes.twilio.rest_server)."""

    def stream_opened(self, call_sid: str, stream: MediaStreamClient) -> None: ...


@dataclass
class MediaStreamResult:
    stream_sid: str
    sent_frames: int = 0
    received_audio: bytearray = field(default_factory=bytearray)
    received_media_messages: int = 0
    marks_received: list[str] = field(default_factory=list)
    # (name, "played" | "cleared" | "fast")
    marks_echoed: list[tuple[str, str]] = field(default_factory=list)
    clears: int = 0
    other_messages: list[dict[str, Any]] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    handshake_status: int | None = None  # HTTP status when the upgrade was refused
    close_code: int | None = None
    closed_by_server: bool = False
    stopped: bool = False
    redirected: bool = False  # the call was redirected through the fake REST API, which ended this stream

    @property
    def received_ms(self) -> int:
        return len(self.received_audio) // 8


class MediaStreamOptions(TypedDict, total=False):
    """`MediaStreamClient`'s keyword arguments, for `run_media_stream` to pass through."""

    auth_token: Required[str]
    audio: Required[bytes]
    stream_token: Required[str | None]
    call_id: Required[str]
    call_sid: str | None
    account_sid: str
    signature_url: str | None
    signed: bool
    fast_marks: bool
    echo_marks_on_clear: bool
    linger_seconds: float
    send_stop: bool
    paced: bool
    extra_parameters: dict[str, str] | None
    rest: StreamRegistry | None


class MediaStreamClient:
    def __init__(
        self,
        url: str,
        *,
        auth_token: str,
        audio: bytes,
        stream_token: str | None,
        call_id: str,
        call_sid: str | None = None,
        account_sid: str = "AC" + "0" * 32,
        signature_url: str | None = None,
        signed: bool = True,
        fast_marks: bool = False,
        echo_marks_on_clear: bool = True,
        linger_seconds: float = 0.5,
        send_stop: bool = True,
        paced: bool = True,
        extra_parameters: dict[str, str] | None = None,
        rest: StreamRegistry | None = None,
    ) -> None:
        """`url` is where the server listens (ws:// on loopback); `signature_url` what Twilio would sign (the
        public wss:// URL; defaults to `url`). `linger_seconds`: how long to keep listening after the last frame.
        `send_stop=False` drops the socket without `stop`, like a crashed media server would see it. `rest`: the
        fake REST API of the same account (FakeTwilioRest); a redirect of this call there ends this stream."""
        self.url = url
        self.auth_token = auth_token
        self.audio_frames = frames(audio)
        self.call_sid = call_sid or new_call_sid()
        self.account_sid = account_sid
        self.signature_url = signature_url or url
        self.signed = signed
        self.fast_marks = fast_marks
        self.echo_marks_on_clear = echo_marks_on_clear
        self.linger_seconds = linger_seconds
        self.send_stop = send_stop
        self.paced = paced
        self.rest = rest
        self._loop: asyncio.AbstractEventLoop | None = None
        self.parameters = {"call_id": call_id, **(extra_parameters or {})}
        if stream_token is not None:
            self.parameters["stream_token"] = stream_token
        self.result = MediaStreamResult(stream_sid="MZ" + uuid.uuid4().hex)
        self._sequence = 0
        self._ws: ClientConnection | None = None
        self._play_until = 0.0
        self._pending_marks: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, name: str, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._echo_mark(name, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- outgoing -----------------------------------------------------------------------------------------------

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    @property
    def _socket(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("the media stream is not connected (use run())")
        return self._ws

    async def _send(self, message: dict[str, Any]) -> None:
        await self._socket.send(json.dumps(message))

    def _start_message(self) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.result.stream_sid,
            "start": {
                "streamSid": self.result.stream_sid,
                "accountSid": self.account_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }

    def _media_message(self, index: int, frame: bytes) -> dict[str, Any]:
        return {
            "event": "media",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.result.stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(index + 1),
                "timestamp": str(index * 20),
                "payload": base64.b64encode(frame).decode(),
            },
        }

    async def _send_audio(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, frame in enumerate(self.audio_frames):
            if self.paced:  # an absolute schedule, so send jitter does not accumulate
                delay = start + index * FRAME_SECONDS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._send(self._media_message(index, frame))
            self.result.sent_frames += 1

    # --- incoming -----------------------------------------------------------------------------------------------

    async def _echo_mark(self, name: str, reason: str) -> None:
        self._pending_marks.pop(name, None)
        self.result.marks_echoed.append((name, reason))
        with contextlib.suppress(ConnectionClosed):
            await self._send(
                {
                    "event": "mark",
                    "sequenceNumber": self._next_sequence(),
                    "streamSid": self.result.stream_sid,
                    "mark": {"name": name},
                }
            )

    def _handle(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        event = message.get("event")
        if event in {"media", "mark", "clear"} and message.get("streamSid") != self.result.stream_sid:
            self.result.protocol_errors.append(f"{event} with a wrong streamSid")  # Twilio: error 31951
            return
        if event == "media":
            try:
                chunk = base64.b64decode(message["media"]["payload"], validate=True)
            except (KeyError, TypeError, ValueError):
                self.result.protocol_errors.append("media without a valid base64 payload")
                return
            self.result.received_audio += chunk
            self.result.received_media_messages += 1
            self._play_until = max(loop.time(), self._play_until) + len(chunk) / SAMPLE_RATE
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if not name:
                self.result.protocol_errors.append("mark without a name")
                return
            self.result.marks_received.append(name)
            if self.fast_marks:
                self._spawn(name, "fast")
            else:
                when = max(self._play_until, loop.time())
                self._pending_marks[name] = loop.call_at(when, self._spawn, name, "played")
        elif event == "clear":
            self.result.clears += 1
            self._play_until = loop.time()
            for name, handle in list(self._pending_marks.items()):
                handle.cancel()
                del self._pending_marks[name]
                if self.echo_marks_on_clear:
                    self._spawn(name, "cleared")
        else:
            self.result.protocol_errors.append(f"unexpected event {event!r}")  # Twilio: error 31924
            self.result.other_messages.append(message)

    async def _receive(self) -> None:
        try:
            async for raw in self._socket:
                if isinstance(raw, bytes):
                    self.result.protocol_errors.append("binary frame")  # Twilio: warning 31950
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    self.result.protocol_errors.append("malformed JSON")
                    continue
                self._handle(message)
        except ConnectionClosed:
            pass
        self.result.closed_by_server = not self.result.redirected  # a redirect is Twilio letting go, not the server

    # --- the call -----------------------------------------------------------------------------------------------

    async def _stop(self) -> None:
        await self._send(
            {
                "event": "stop",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.result.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )
        self.result.stopped = True

    async def redirected(self) -> None:
        """The call got new TwiML through the REST API: Twilio abandons the <Connect><Stream>, so the stream sends
        `stop` and closes (docs/fakes.md)."""
        if self._ws is None or self.result.stopped:
            return
        self.result.redirected = True
        with contextlib.suppress(ConnectionClosed):
            await self._stop()
            await self._ws.close()

    def redirect_soon(self) -> concurrent.futures.Future[None] | None:
        """`redirected()` on this stream's own loop, from any thread (the fake REST server runs on another)."""
        if self._loop is None or self._loop.is_closed():
            return None
        return asyncio.run_coroutine_threadsafe(self.redirected(), self._loop)

    async def run(self) -> MediaStreamResult:
        headers = {"X-Twilio-Signature": sign(self.auth_token, self.signature_url)} if self.signed else {}
        self._loop = asyncio.get_running_loop()
        try:
            async with connect(self.url, additional_headers=headers, max_size=None, open_timeout=5) as ws:
                self._ws = ws
                if self.rest is not None:
                    self.rest.stream_opened(self.call_sid, self)
                await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
                await self._send(self._start_message())
                receiver = asyncio.create_task(self._receive())
                try:
                    await self._send_audio()
                    await asyncio.wait({receiver}, timeout=self.linger_seconds)
                    if self.send_stop and not receiver.done() and not self.result.stopped:
                        await self._stop()
                except ConnectionClosed:
                    pass
                finally:
                    for handle in self._pending_marks.values():
                        handle.cancel()
                    if self.send_stop:
                        await ws.close()
                    else:
                        ws.transport.abort()  # vanish without a closing handshake
                    await asyncio.wait({receiver}, timeout=2)
                    receiver.cancel()
                self.result.close_code = ws.close_code
        except InvalidStatus as exc:
            self.result.handshake_status = exc.response.status_code
        except (ConnectionClosed, OSError) as exc:
            self.result.protocol_errors.append(f"connection failed: {type(exc).__name__}")
        return self.result


def run_media_stream(url: str, **options: Unpack[MediaStreamOptions]) -> MediaStreamResult:
    """Play one call from synchronous code (its own event loop in a thread)."""
    with LoopThread() as loop:
        return loop.run(MediaStreamClient(url, **options).run(), timeout=None)
