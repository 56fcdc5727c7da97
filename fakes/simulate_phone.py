"""Play a scripted caller as a real phone call, end to end over sockets, against a running server.

    result = simulate_phone_call(org, "routine_booking", server_url="http://127.0.0.1:8000")

What happens is what Twilio and OpenAI would do: the fake Twilio posts a signed /twilio/voice webhook for the clinic's
number, reads the TwiML, opens the signed Media Stream to /twilio/media with the stream token from <Parameter>,
streams 20 ms μ-law frames at 50 frames/s (and echoes marks as the agent's audio "plays"), while the fake OpenAI
Realtime server runs the scenario (the caller's lines, the model's answers and tool calls). When the script is done
(or the server ends the stream) the caller hangs up like Twilio: `stop`, then /twilio/stream-ended (unless the call
was redirected to staff) and the `completed` status callback.

The server must reach the fake OpenAI: pass `fake_openai_url` of a fake it was started against (OPENAI_BASE_URL), or
leave it out to start one here, which works when the server runs in this process (`serve_in_thread()`, tests):
settings.OPENAI_BASE_URL is pointed at it for the duration of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from calls.models import Call
from fakes.twilio.audio import FRAME_BYTES, ULAW_SILENCE
from fakes.twilio.media import FRAME_SECONDS, MediaStreamClient, MediaStreamResult, StreamRegistry
from fakes.twilio.runner import LoopThread
from fakes.twilio.webhooks import WebhookClient, new_call_sid
from organizations.models import Organization
from realtime.telephony import MEDIA_PATH

if TYPE_CHECKING:  # fakes.openai (aiohttp) is imported only when a fake is started here
    from fakes.openai.scenarios import Scenario

DEFAULT_CALLER = "+14155550199"


@dataclass
class PhoneCallResult:
    call: Call
    voice_twiml: str  # what /twilio/voice answered
    media: MediaStreamResult  # what the fake Twilio sent and heard
    session: dict | None  # the fake OpenAI's record of the session (transcript, function calls, violations)
    stream_ended_twiml: str | None = None  # what /twilio/stream-ended answered (None after a transfer)
    notes: list[str] = field(default_factory=list)


class ScriptedCaller(MediaStreamClient):
    """A Twilio media stream that keeps streaming (silence; the fake model's scripted caller does the talking)
    until `hang_up()` says so, the server closes the socket, or `max_seconds` passed."""

    def __init__(self, url: str, *, hang_up: Callable[[], Awaitable[bool]], max_seconds: float, **kwargs: Any):
        super().__init__(url, audio=bytes([ULAW_SILENCE]) * FRAME_BYTES, **kwargs)
        self.hang_up = hang_up
        self.max_seconds = max_seconds

    async def _send_audio(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        frame = self.audio_frames[0]
        index = 0
        while loop.time() - start < self.max_seconds:
            delay = start + index * FRAME_SECONDS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._send(self._media_message(index, frame))
            self.result.sent_frames += 1
            index += 1
            if index % 10 == 0 and await self.hang_up():
                return


def _stream_parameters(twiml: str) -> tuple[str, dict[str, str]]:
    """(Stream url, {Parameter name: value}) from a <Connect><Stream> answer."""
    root = ET.fromstring(twiml)  # noqa: S314 - our own server's TwiML over loopback
    stream = root.find("./Connect/Stream")
    if stream is None:
        raise ValueError("the voice webhook did not answer with <Connect><Stream>")
    return stream.get("url", ""), {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


@contextlib.contextmanager
def _fake_openai(scenario: str | Path | Scenario, fake_openai_url: str | None, time_scale: float) -> Iterator[str]:
    if fake_openai_url:
        yield fake_openai_url
        return
    from fakes.openai import FakeOpenAI

    fake = FakeOpenAI.start_in_thread(scenario=scenario, time_scale=time_scale)
    previous = settings.OPENAI_BASE_URL
    settings.OPENAI_BASE_URL = fake.base_url
    try:
        yield fake.base_url
    finally:
        settings.OPENAI_BASE_URL = previous
        fake.stop()


def simulate_phone_call(
    organization: Organization,
    scenario: str | Path | Scenario,
    *,
    server_url: str,
    fake_openai_url: str | None = None,
    caller: str = DEFAULT_CALLER,
    called: str | None = None,
    time_scale: float = 0.2,
    hangup_after: float = 0.5,
    fast_marks: bool = False,
    max_seconds: float = 60.0,
    twilio_rest: StreamRegistry | None = None,
) -> PhoneCallResult:
    """Play `scenario` as a phone call to `organization` through the server at `server_url` (http://host:port).

    `fake_openai_url` (…/v1) must be the fake the server talks to; without it a fake is started here (in-process
    servers only). `time_scale` speeds up the fake's script when this function starts the fake. `hangup_after`: seconds
    the caller stays on the line after the script's last answer. `twilio_rest`: the fake Twilio REST API the server
    redirects calls through (a redirect there ends this call's stream, as on Twilio). Returns the ended call and
    what each side saw."""
    if called is None:
        number = organization.twilio_numbers.order_by("number").first()
        if number is None:
            raise ValueError(f"{organization} has no Twilio number to call")
        called = number.number
    call_sid = new_call_sid()
    with _fake_openai(scenario, fake_openai_url, time_scale) as openai_url:
        control = openai_url.removesuffix("/v1")
        sessions_before = len(httpx.get(f"{control}/_fake/sessions", timeout=5).json())
        with WebhookClient(
            server_url=server_url, public_base_url=settings.PUBLIC_BASE_URL, auth_token=settings.TWILIO_AUTH_TOKEN
        ) as webhooks:
            answer = webhooks.voice(call_sid=call_sid, caller=caller, called=called)
            answer.raise_for_status()
            stream_url, params = _stream_parameters(answer.text)
            parts = urlsplit(server_url)
            ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{MEDIA_PATH}"
            session_state: dict[str, Any] = {}
            done_at: list[float] = []

            async def hang_up() -> bool:
                async with httpx.AsyncClient(timeout=5) as client:
                    sessions = (await client.get(f"{control}/_fake/sessions")).json()
                if len(sessions) <= sessions_before:
                    return False
                session_state.update(sessions[sessions_before])
                if session_state.get("ended"):
                    return True
                if session_state.get("script_done"):
                    done_at.append(time.monotonic())
                    return time.monotonic() - done_at[0] >= hangup_after
                return False

            caller_stream = ScriptedCaller(
                ws_url,
                hang_up=hang_up,
                max_seconds=max_seconds,
                auth_token=settings.TWILIO_AUTH_TOKEN,
                stream_token=params.get("stream_token"),
                call_id=params.get("call_id", ""),
                call_sid=call_sid,
                signature_url=stream_url,
                fast_marks=fast_marks,
                linger_seconds=1.0,
                rest=twilio_rest,
            )
            with LoopThread() as loop:
                media = loop.run(caller_stream.run(), timeout=max_seconds + 30)
            sessions = httpx.get(f"{control}/_fake/sessions", timeout=5).json()
            session = sessions[sessions_before] if len(sessions) > sessions_before else None
            call = _wait_for_end(call_sid)
            stream_ended = None
            if call.metadata.get("twilio", {}).get("stream_outcome") != "transfer":
                stream_ended = webhooks.stream_ended(call_sid=call_sid).text
            duration = int((call.ended_at or call.started_at).timestamp() - call.started_at.timestamp())
            webhooks.status(call_sid=call_sid, call_status="completed", duration=max(duration, 1))
    call.refresh_from_db()
    return PhoneCallResult(
        call=call, voice_twiml=answer.text, media=media, session=session, stream_ended_twiml=stream_ended
    )


def _wait_for_end(call_sid: str, timeout: float = 10.0) -> Call:
    """The bridge ends the call row right after the socket closes; give it a moment."""
    deadline = time.monotonic() + timeout
    while True:
        call = Call.objects.get(twilio_call_sid=call_sid)
        if call.is_ended or time.monotonic() > deadline:
            return call
        time.sleep(0.05)


# --- an in-process daphne for tests and the simulator -------------------------------------------------------------

_daphne_lock = threading.Lock()
_daphne_url: str | None = None


def serve_in_thread() -> str:
    """Run the project's ASGI application under daphne on a free loopback port in a daemon thread of this process;
    returns its http:// URL. Twisted's reactor cannot restart, so this starts one server per process and returns
    the same URL afterwards. In-process means it shares this process' settings and (test) database."""
    global _daphne_url
    with _daphne_lock:
        if _daphne_url is not None:
            return _daphne_url
        from daphne.server import Server  # installs Twisted's asyncio reactor; import before anything else Twisted

        from voiceagent.asgi import application

        ready = threading.Event()
        server = Server(
            application=application,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            ready_callable=ready.set,
            verbosity=0,
        )
        threading.Thread(target=server.run, name="daphne", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("daphne did not start")
        deadline = time.monotonic() + 10
        while not server.listening_addresses:
            if time.monotonic() > deadline:
                raise RuntimeError("daphne did not start listening")
            time.sleep(0.01)
        host, port = server.listening_addresses[0]
        _daphne_url = f"http://{host}:{port}"
        return _daphne_url
