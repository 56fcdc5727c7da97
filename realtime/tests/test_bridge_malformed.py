"""Frames Twilio never sends, over real sockets through daphne: a few are ignored and the call goes on; a socket
that keeps sending them is closed, the OpenAI session with it, and the call ends as failed (it used to raise, drop
the socket without shutdown, and leave the upstream running for half a minute)."""

from __future__ import annotations

import asyncio

import pytest

from calls.models import Call
from fakes.simulate_phone import _wait_for_end
from fakes.twilio.audio import tone
from fakes.twilio.media import MediaStreamClient
from fakes.twilio.runner import LoopThread
from fakes.twilio.testing import TEST_AUTH_TOKEN
from realtime import bridge
from realtime.tests import test_bridge_edges as edges
from realtime.tests.test_bridge_edges import PUBLIC_WSS, _wait, incoming_call, stream_ended, ws_url

fake = edges.fake  # the fixtures of the edge tests: a fake OpenAI that keeps the session open, clinic A on a number
org = edges.org

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GARBAGE = [
    '{"event":"media","media":{"payload":"abc',  # the frame from the security test: cut off inside the payload
    "not json",
    '{"event":"start","start":',
    '"a string"',
    '{"event":"mark","mark":{"name":"\\ud800"}}',
    '{"event":"mark","mark":{"name":"' + "[" * 10 + '\\u0000"}}',
]


class GarbleClient(MediaStreamClient):
    """A Media Streams client that slips `garbage` text frames in after `at` audio frames."""

    def __init__(self, *args, garbage: list[str], at: int = 5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.garbage, self.at = garbage, at

    async def _send_audio(self) -> None:
        for index, frame in enumerate(self.audio_frames):
            if index == self.at:
                for text in self.garbage:
                    await self._socket.send(text)
            await self._send(self._media_message(index, frame))
            self.result.sent_frames += 1
            await asyncio.sleep(0.02)


def garbled_stream(server: str, params: dict, garbage: list[str]):
    client = GarbleClient(
        ws_url(server),
        auth_token=TEST_AUTH_TOKEN,
        audio=tone(0.4),
        stream_token=params["stream_token"],
        call_id=params["call_id"],
        signature_url=PUBLIC_WSS,
        fast_marks=True,
        linger_seconds=0.5,
        garbage=garbage,
    )
    with LoopThread() as loop:
        return loop.run(client.run())


def test_a_few_malformed_frames_are_ignored_and_the_call_goes_on(phone, fake, org):
    call_sid, params = incoming_call(phone)
    result = garbled_stream(phone, params, GARBAGE)

    assert result.stopped  # the caller hung up normally: the server never dropped the socket
    call = _wait_for_end(call_sid)
    assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.CALLER_HANGUP
    _wait(lambda: fake.sessions[0].ended.is_set())
    appended = [e for e in fake.sessions[0].received if e["type"] == "input_audio_buffer.append"]
    assert len(appended) == result.sent_frames  # every real frame before and after the garbage went upstream


def test_a_socket_that_keeps_sending_malformed_frames_is_closed_and_the_call_fails(phone, fake, org):
    call_sid, params = incoming_call(phone)
    flood = (GARBAGE * (bridge.MALFORMED_FRAME_LIMIT // len(GARBAGE) + 2))[: bridge.MALFORMED_FRAME_LIMIT + 5]
    result = garbled_stream(phone, params, flood)

    assert result.closed_by_server and not result.stopped
    call = _wait_for_end(call_sid)
    assert call.status == Call.Status.FAILED and call.end_reason == Call.EndReason.ERROR
    _wait(lambda: fake.sessions[0].ended.is_set(), timeout=5)  # the OpenAI session closed with it
    assert "stream_outcome" not in call.metadata["twilio"]  # no goodbye recorded
    assert "<Dial" in stream_ended(phone, call_sid)  # a caller still on the line gets the fallback
