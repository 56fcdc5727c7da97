"""What the fake refuses by date and by session age, and how: retired models (by the fake's own clock), transcription
options a model does not take, invalid turn detection, and the 60-minute session cap (close 1001)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from fakes.openai import FakeOpenAI
from fakes.openai.protocol import SHUTDOWN_DATES, ProtocolError
from fakes.openai.server import SESSION_LIMIT_REASON
from fakes.openai.testing import receptionist_session, validate_server_event
from fakes.tests.test_fake_openai_protocol import recv_until, send, socket

pytestmark = pytest.mark.slow

AFTER_TRANSCRIBE_SHUTDOWN = dt.datetime(2027, 2, 26, 0, 0, 1, tzinfo=dt.UTC).timestamp()
BEFORE_TRANSCRIBE_SHUTDOWN = dt.datetime(2027, 2, 25, 23, 59, tzinfo=dt.UTC).timestamp()
AFTER_REALTIME_SHUTDOWN = dt.datetime(2027, 1, 20, 12, 0, tzinfo=dt.UTC).timestamp()
RETIRED_TRANSCRIPTION_SESSION = receptionist_session()
RETIRED_TRANSCRIPTION_SESSION["audio"]["input"]["transcription"] = {"model": "gpt-4o-mini-transcribe"}


def transcription_update(**transcription: object) -> dict:
    return {
        "type": "session.update",
        "event_id": "evt_tr",
        "session": {"type": "realtime", "audio": {"input": {"transcription": transcription}}},
    }


def test_the_shutdown_dates_are_the_sdks():
    assert SHUTDOWN_DATES["gpt-4o-mini-transcribe"] == dt.date(2027, 2, 26)
    assert SHUTDOWN_DATES["whisper-1"] == dt.date(2027, 2, 26)
    assert SHUTDOWN_DATES["gpt-realtime"] == dt.date(2027, 1, 20)
    for current in ("gpt-realtime-whisper", "gpt-transcribe", "gpt-live-transcribe", "gpt-realtime-2.1"):
        assert current not in SHUTDOWN_DATES


async def test_a_transcription_model_is_refused_in_session_update_from_its_shutdown_date():
    async with FakeOpenAI() as fake, socket(fake) as ws:
        fake.clock = lambda: BEFORE_TRANSCRIBE_SHUTDOWN
        await send(ws, transcription_update(model="gpt-4o-mini-transcribe"))
        (accepted,) = await recv_until(ws, "session.updated")
        fake.clock = lambda: AFTER_TRANSCRIBE_SHUTDOWN
        await send(ws, transcription_update(model="gpt-4o-mini-transcribe"))
        (error,) = await recv_until(ws, "error")
        await send(ws, transcription_update(model="gpt-realtime-whisper"))
        (current,) = await recv_until(ws, "session.updated")
    assert accepted["session"]["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "model_not_found",
        "message": "The model `gpt-4o-mini-transcribe` has been deprecated, learn more here: "
        "https://platform.openai.com/docs/deprecations",
        "param": None,
        "event_id": "evt_tr",
    }
    # The refused update changed nothing; the socket stays open and a current model is accepted.
    assert current["session"]["audio"]["input"]["transcription"]["model"] == "gpt-realtime-whisper"


async def test_minting_a_secret_with_a_retired_transcription_model_is_a_404_model_not_found():
    async with FakeOpenAI() as fake, httpx.AsyncClient() as http:
        fake.clock = lambda: AFTER_TRANSCRIBE_SHUTDOWN
        answer = await http.post(
            f"{fake.base_url}/realtime/client_secrets",
            headers={"Authorization": "Bearer sk-test"},
            json={"session": RETIRED_TRANSCRIPTION_SESSION},
        )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert fake.client_secrets == {}


async def test_a_retired_realtime_model_is_refused_at_the_handshake():
    async with FakeOpenAI() as fake:
        fake.clock = lambda: AFTER_REALTIME_SHUTDOWN
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{fake.websocket_base_url}/realtime?model=gpt-realtime",
                additional_headers={"Authorization": "Bearer sk-test"},
            ):
                pass
        async with socket(fake, "model=gpt-realtime-2.1"):  # the current model still opens
            pass
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["error"]["code"] == "model_not_found"


async def test_registered_calls_are_validated_by_the_fakes_clock_too():
    fake = FakeOpenAI()
    fake.clock = lambda: AFTER_TRANSCRIBE_SHUTDOWN
    with pytest.raises(ProtocolError) as refused:
        fake.register_call(session=RETIRED_TRANSCRIPTION_SESSION)
    assert (refused.value.code, refused.value.status) == ("model_not_found", 404)


@pytest.mark.parametrize(
    ("transcription", "param"),
    [
        ({"model": "gpt-realtime-whisper", "keywords": ["Riverside"]}, "keywords"),
        ({"model": "gpt-realtime-whisper", "prompt": "clinic names"}, "prompt"),
        ({"model": "gpt-4o-transcribe-diarize", "prompt": "clinic names"}, "prompt"),
        ({"model": "gpt-realtime-whisper", "languages": ["en", "es"]}, "languages"),
        ({"model": "gpt-live-transcribe", "delay": "low"}, "delay"),
    ],
)
async def test_transcription_options_a_model_does_not_take_are_refused(transcription, param):
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, transcription_update(**transcription))
        (error,) = await recv_until(ws, "error")
    assert error["error"]["code"] == "unsupported_parameter"
    assert error["error"]["param"] == f"session.audio.input.transcription.{param}"


@pytest.mark.parametrize(
    "transcription",
    [
        {"model": "gpt-live-transcribe", "languages": ["en", "es"], "keywords": ["Riverside", "Dr. Okafor"]},
        {"model": "gpt-transcribe", "languages": ["en"], "keywords": ["Harbor"]},
        {"model": "gpt-realtime-whisper", "language": "es", "delay": "low"},
    ],
)
async def test_transcription_options_a_model_takes_are_accepted(transcription):
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, transcription_update(**transcription))
        (updated,) = await recv_until(ws, "session.updated")
    assert updated["session"]["audio"]["input"]["transcription"] == transcription


@pytest.mark.parametrize(
    ("turn_detection", "code", "param"),
    [
        ({"type": "push_to_talk"}, "invalid_value", "type"),
        ({"type": "semantic_vad", "eagerness": "eager"}, "invalid_value", "eagerness"),
        ({"type": "semantic_vad", "idle_timeout_ms": 10000}, "unknown_parameter", "idle_timeout_ms"),
        ({"type": "semantic_vad", "silence_duration_ms": 500}, "unknown_parameter", "silence_duration_ms"),
        ({"type": "server_vad", "idle_timeout_ms": 1000}, "integer_below_min_value", "idle_timeout_ms"),
    ],
)
async def test_invalid_turn_detection_is_an_error_event_and_changes_nothing(turn_detection, code, param):
    update = {
        "type": "session.update",
        "event_id": "evt_td",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}},
    }
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, update)
        (error,) = await recv_until(ws, "error")
        await send(ws, {"type": "session.update", "session": {"type": "realtime"}})
        (updated,) = await recv_until(ws, "session.updated")
    assert error["error"]["code"] == code and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["param"] == f"session.audio.input.turn_detection.{param}"
    assert error["error"]["event_id"] == "evt_td"
    assert updated["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"  # untouched


async def test_semantic_vad_with_eagerness_is_accepted_and_filled_with_its_defaults():
    update = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}},
        },
    }
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, update)
        (updated,) = await recv_until(ws, "session.updated")
    assert updated["session"]["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }


async def test_a_session_is_closed_with_1001_at_the_session_cap():
    async with FakeOpenAI(session_limit=0.2) as fake, socket(fake) as ws:
        with pytest.raises(ConnectionClosedOK):
            async with asyncio.timeout(5):
                while True:
                    validate_server_event(json.loads(await ws.recv()))
    assert ws.close_code == 1001
    assert ws.close_reason == SESSION_LIMIT_REASON
    assert fake.sessions[0].ended.is_set()


async def test_a_call_ends_at_the_session_cap_and_its_sideband_gets_1001():
    async with FakeOpenAI(session_limit=0.2) as fake:
        call_id = fake.register_call()
        async with socket(fake, query=f"call_id={call_id}") as ws:
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 5)
        assert (ws.close_code, ws.close_reason) == (1001, SESSION_LIMIT_REASON)
        assert fake.calls[call_id].state == "ended"
        with pytest.raises(InvalidStatus) as refused:  # nothing left to attach to
            async with socket(fake, query=f"call_id={call_id}"):
                pass
    assert refused.value.response.status_code == 404


async def test_the_fakes_date_can_be_set_by_constructor_or_environment(monkeypatch):
    async with FakeOpenAI(today="2027-02-26") as fake, socket(fake) as ws:
        await send(ws, transcription_update(model="gpt-4o-mini-transcribe"))
        (error,) = await recv_until(ws, "error")
    assert (error["error"]["code"], error["error"]["event_id"]) == ("model_not_found", "evt_tr")
    assert dt.datetime.fromtimestamp(fake.clock(), dt.UTC).date() == dt.date(2027, 2, 26)

    monkeypatch.setenv("FAKE_OPENAI_TODAY", "2027-02-25")
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, transcription_update(model="gpt-4o-mini-transcribe"))
        (accepted,) = await recv_until(ws, "session.updated")
        body = {"session": {**RETIRED_TRANSCRIPTION_SESSION, "model": "gpt-realtime-2.1"}}
        fake.clock = FakeOpenAI(today="2027-02-26").clock  # the day it shuts down: minting is refused too
        async with httpx.AsyncClient() as http:
            minted = await http.post(
                f"{fake.base_url}/realtime/client_secrets", json=body, headers={"Authorization": "Bearer sk-test"}
            )
    assert accepted["session"]["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert minted.status_code == 404 and minted.json()["error"]["code"] == "model_not_found"


def test_a_malformed_date_is_refused_loudly():
    with pytest.raises(ValueError, match="FAKE_OPENAI_TODAY"):
        FakeOpenAI(today="26/02/2027")
