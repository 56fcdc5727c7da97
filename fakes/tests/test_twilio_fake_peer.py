"""The shipped fake Twilio behaves like Twilio over real sockets, so bridge and end-to-end tests can trust it."""

from __future__ import annotations

import asyncio
import base64
import json
import wave

import httpx
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.server import serve

from calls.models import Call
from fakes.twilio.audio import FRAME_BYTES, read_wav, silence, tone, write_wav_ulaw
from fakes.twilio.media import MediaStreamClient, run_media_stream
from fakes.twilio.runner import LoopThread
from fakes.twilio.testing import TEST_AUTH_TOKEN, add_number, open_around_the_clock
from fakes.twilio.webhooks import WebhookClient, new_call_sid

PUBLIC_WSS = "wss://voice.clinic.example/twilio/media"


class BridgeStandIn:
    """A minimal server playing our media bridge: checks the handshake signature, answers the caller's first
    frame with `agent_ms` of audio and one mark, and optionally `clear`s on the 5th frame."""

    def __init__(self, *, agent_ms: int = 40, clear_on_frame: int | None = None) -> None:
        self.agent_ms = agent_ms
        self.clear_on_frame = clear_on_frame
        self.received: list[dict] = []
        self.marks_back: list[str] = []
        self.url = ""

    def _check_signature(self, connection, request):
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(TEST_AUTH_TOKEN).validate(PUBLIC_WSS, {}, signature):
            return connection.respond(403, "invalid signature\n")
        return None

    async def _handler(self, ws) -> None:
        frames_seen = 0
        stream_sid = ""
        async for raw in ws:
            message = json.loads(raw)
            self.received.append(message)
            event = message["event"]
            if event == "start":
                stream_sid = message["start"]["streamSid"]
            elif event == "media":
                frames_seen += 1
                if frames_seen == 1:
                    audio = base64.b64encode(b"\x7f" * (self.agent_ms * 8)).decode()
                    await ws.send(json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": audio}}))
                    await ws.send(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": "m1"}}))
                if frames_seen == self.clear_on_frame:
                    await ws.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
            elif event == "mark":
                self.marks_back.append(message["mark"]["name"])
            elif event == "stop":
                break

    async def __aenter__(self) -> BridgeStandIn:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._check_signature)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/twilio/media"
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()


def client(url: str, **kwargs) -> MediaStreamClient:
    defaults = {
        "auth_token": TEST_AUTH_TOKEN,
        "audio": tone(0.2),
        "stream_token": "st_abc",
        "call_id": "c-1",
        "signature_url": PUBLIC_WSS,
        "paced": False,
        # How long the client keeps listening after its last frame: the stand-in's audio, mark and clear must arrive
        # (and a played mark be echoed) by then. Generous, so a loaded machine's slower round trip still fits.
        "linger_seconds": 1.0,
    }
    return MediaStreamClient(url, **{**defaults, **kwargs})


async def test_the_media_client_speaks_twilios_protocol():
    async with BridgeStandIn() as bridge:
        fake = client(bridge.url, call_sid="CA" + "1" * 32, paced=True)
        result = await fake.run()

    events = [message["event"] for message in bridge.received]
    assert events[:2] == ["connected", "start"]
    assert events[-1] == "stop"
    start = bridge.received[1]["start"]
    assert start["streamSid"].startswith("MZ") and start["callSid"] == "CA" + "1" * 32
    assert start["customParameters"] == {"stream_token": "st_abc", "call_id": "c-1"}
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = [m for m in bridge.received if m["event"] == "media"]
    assert len(media) == result.sent_frames == 10  # 200 ms at 50 frames/s
    assert [m["media"]["chunk"] for m in media] == [str(i) for i in range(1, 11)]
    assert [m["media"]["timestamp"] for m in media] == [str(i * 20) for i in range(10)]
    assert all(len(base64.b64decode(m["media"]["payload"])) == FRAME_BYTES for m in media)
    sequence = [int(m["sequenceNumber"]) for m in bridge.received if "sequenceNumber" in m]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert result.stopped and result.protocol_errors == []


async def test_received_audio_is_recorded_and_marks_come_back_after_it_played():
    async with BridgeStandIn(agent_ms=40) as bridge:
        result = await client(bridge.url).run()
    assert result.received_ms == 40
    assert result.marks_received == ["m1"]
    assert result.marks_echoed == [("m1", "played")]
    assert bridge.marks_back == ["m1"]


async def test_clear_drops_queued_audio_and_reports_the_discarded_mark():
    # 10 s of agent audio cannot finish playing before the clear that follows 5 frames later.
    async with BridgeStandIn(agent_ms=10_000, clear_on_frame=5) as bridge:
        result = await client(bridge.url, paced=True).run()
    assert result.clears == 1
    assert result.marks_echoed == [("m1", "cleared")]


async def test_fast_mode_echoes_marks_at_once():
    async with BridgeStandIn(agent_ms=10_000) as bridge:
        result = await client(bridge.url, fast_marks=True).run()
    assert result.marks_echoed == [("m1", "fast")]


async def test_an_unsigned_upgrade_is_refused_by_a_checking_server():
    async with BridgeStandIn() as bridge:
        result = await client(bridge.url, signed=False).run()
        wrong_url = await client(bridge.url, signature_url="wss://other.example/twilio/media").run()
    assert result.handshake_status == 403
    assert wrong_url.handshake_status == 403
    assert bridge.received == []


async def test_a_missing_stream_token_is_simply_not_sent():
    async with BridgeStandIn() as bridge:
        await client(bridge.url, stream_token=None).run()
    assert bridge.received[1]["start"]["customParameters"] == {"call_id": "c-1"}


def test_wav_files_in_mulaw_or_pcm16_become_mulaw_frames(tmp_path):
    audio = tone(0.1) + silence(0.05)
    write_wav_ulaw(tmp_path / "ulaw.wav", audio)
    assert read_wav(tmp_path / "ulaw.wav") == audio

    with wave.open(str(tmp_path / "pcm.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    assert read_wav(tmp_path / "pcm.wav") == b"\xff" * 800  # digital silence in μ-law

    with wave.open(str(tmp_path / "cd.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(b"\x00\x00" * 100)
    with pytest.raises(ValueError, match="8 kHz mono"):
        read_wav(tmp_path / "cd.wav")


@pytest.mark.django_db(transaction=True)
def test_the_webhook_client_drives_a_real_server_over_a_socket(live_server, org_a, settings):
    settings.TWILIO_AUTH_TOKEN = TEST_AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://voice.clinic.example"
    add_number(org_a, "+14155550199")
    open_around_the_clock(org_a)
    sid = new_call_sid()
    with WebhookClient(
        server_url=live_server.url, public_base_url=settings.PUBLIC_BASE_URL, auth_token=TEST_AUTH_TOKEN
    ) as twilio:
        answer = twilio.voice(call_sid=sid, caller="+14155550123", called="+14155550199")
        assert answer.status_code == 200 and b"<Stream" in answer.content
        assert twilio.status(call_sid=sid, call_status="completed", duration=12).status_code == 204
        forged = twilio.status(call_sid=sid, call_status="failed", signature="Zm9yZ2Vk")
        assert forged.status_code == 403
    call = Call.objects.get(twilio_call_sid=sid)
    assert (call.status, call.duration_seconds) == (Call.Status.COMPLETED, 12)


def test_the_webhook_client_reports_connection_errors_plainly():
    with (
        WebhookClient(
            server_url="http://127.0.0.1:9", public_base_url="https://x.example", auth_token=TEST_AUTH_TOKEN, timeout=1
        ) as twilio,
        pytest.raises(httpx.ConnectError),
    ):
        twilio.status(call_sid=new_call_sid(), call_status="completed")


async def test_the_client_notices_when_the_server_hangs_up_first():
    async def close_on_start(ws):
        async for raw in ws:
            if json.loads(raw)["event"] == "start":
                await ws.close(code=1008, reason="bad token")
                return

    async with serve(close_on_start, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        # 10 s of paced audio; the server hangs up on `start`, so the client stops long before its end.
        result = await asyncio.wait_for(
            client(f"ws://127.0.0.1:{port}/twilio/media", audio=tone(10.0), paced=True).run(), timeout=30
        )
    assert result.closed_by_server
    assert result.close_code == 1008
    assert result.sent_frames < 500
    assert not result.stopped


def test_sync_tests_can_play_a_call_through_the_thread_runner():
    with LoopThread() as server_loop:
        bridge = BridgeStandIn(agent_ms=20)
        server_loop.run(bridge.__aenter__())
        try:
            result = run_media_stream(
                bridge.url,
                auth_token=TEST_AUTH_TOKEN,
                audio=tone(0.1),
                stream_token="st_x",
                call_id="c-2",
                signature_url=PUBLIC_WSS,
                fast_marks=True,
                linger_seconds=1.0,
            )
        finally:
            server_loop.run(bridge.__aexit__(None, None, None))
    assert result.sent_frames == 5
    assert result.received_ms == 20
    assert bridge.marks_back == ["m1"]
