"""The official openai SDK (3.57) is the judge of the fake's fidelity: if the SDK cannot talk to it, it is not faithful.

Every server event the fake sends in these conversations is also validated against the SDK's pydantic models (the
SDK's own `recv()` parses leniently and would not notice a missing field)."""

from __future__ import annotations

import base64
import time
from typing import cast

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeFunctionTool, RealtimeSessionCreateRequestParam
from websockets.exceptions import InvalidStatus

from fakes.openai import FakeOpenAI
from fakes.openai.testing import RECEPTIONIST_TOOLS, receptionist_session, validate_server_event

pytestmark = pytest.mark.slow

SESSION: RealtimeSessionCreateRequestParam = {
    "type": "realtime",
    "model": "gpt-realtime-2.1",
    "instructions": "You are the clinic's receptionist.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad", "threshold": 0.6, "silence_duration_ms": 600},
            "noise_reduction": {"type": "near_field"},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0},
    },
    "tools": RECEPTIONIST_TOOLS,
    "tool_choice": "auto",
    "output_modalities": ["audio"],
    "max_output_tokens": 1024,
}


def assert_all_events_valid(fake: FakeOpenAI) -> None:
    for session_log in fake.sessions:
        for event in session_log.sent:
            validate_server_event(event)


async def test_sdk_client_secrets_create_returns_the_secret_and_the_effective_session():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        secret = await client.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 300}, session=SESSION
        )

    assert secret.value.startswith("ek_")
    assert abs(secret.expires_at - (time.time() + 300)) < 5
    assert secret.session.type == "realtime"
    assert secret.session.id.startswith("sess_")
    assert secret.session.object == "realtime.session"
    assert secret.session.model == "gpt-realtime-2.1"
    audio = secret.session.audio
    assert audio is not None and audio.output is not None and audio.input is not None
    assert audio.output.voice == "marin"
    assert audio.input.format is not None and audio.input.format.type == "audio/pcmu"
    turn_detection = audio.input.turn_detection
    assert turn_detection is not None and turn_detection.type == "server_vad"
    assert turn_detection.silence_duration_ms == 600
    tools = secret.session.tools or []
    functions = [t for t in tools if isinstance(t, RealtimeFunctionTool)]
    assert len(functions) == len(tools)
    assert [t.name for t in functions] == ["complete_intake", "escalate_call", "end_call"]
    (request,) = fake.requests_to("/realtime/client_secrets")
    assert request.body == {"expires_after": {"anchor": "created_at", "seconds": 300}, "session": SESSION}
    assert request.auth == "standard"
    assert request.headers["Authorization"] == "<redacted>"
    assert "OpenAI-Beta" not in request.headers


async def test_sdk_connect_with_model_does_a_full_function_call_round_trip():
    async with FakeOpenAI(scenario="routine_booking", time_scale=0.01) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
        async with client.realtime.connect(model="gpt-realtime-2.1") as conn:
            created = await conn.recv()
            assert created.type == "session.created" and created.session.type == "realtime"
            assert created.session.model == "gpt-realtime-2.1"
            await conn.session.update(session=cast(RealtimeSessionCreateRequestParam, receptionist_session()))
            await conn.input_audio_buffer.append(audio=base64.b64encode(b"\xff" * 1600).decode())
            calls = []
            async for event in conn:
                if event.type == "session.updated":
                    assert event.session.type == "realtime"
                    assert event.session.audio and event.session.audio.output
                    assert event.session.audio.output.voice == "marin"
                elif event.type == "response.function_call_arguments.done":
                    calls.append(event)
                elif event.type == "response.done" and calls:
                    for call in calls:
                        await conn.conversation.item.create(
                            item={"type": "function_call_output", "call_id": call.call_id, "output": '{"ok": true}'}
                        )
                    calls = []
                    await conn.response.create()
                elif event.type == "response.done" and fake.sessions[0].script_done.is_set():
                    break

    session_log = fake.sessions[0]
    assert session_log.violations == []
    assert [c["name"] for c in session_log.function_calls] == ["complete_intake", "end_call"]
    assert set(session_log.tool_outputs) == {c["call_id"] for c in session_log.function_calls}
    assert session_log.audio_bytes_in == 1600
    assert ("caller", "It's for me, Maria Gonzalez, born March 14th, 1985.") in session_log.transcript()
    assert session_log.received_types()[:2] == ["session.update", "input_audio_buffer.append"]
    assert_all_events_valid(fake)


async def test_sdk_connect_with_call_id_attaches_to_a_webrtc_call_as_sideband():
    async with FakeOpenAI(scenario="request_human", time_scale=0.01) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
        secret = await client.realtime.client_secrets.create(session=SESSION)
        # The browser's WebRTC offer, made with the ephemeral key.
        async with openai.DefaultAsyncHttpxClient() as http:
            answer = await http.post(
                f"{fake.base_url}/realtime/calls",
                content="v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n",
                headers={"Authorization": f"Bearer {secret.value}", "Content-Type": "application/sdp"},
            )
        assert answer.status_code == 201
        assert answer.text.startswith("v=0")
        call_id = answer.headers["location"].rsplit("/", 1)[-1]
        assert call_id.startswith("rtc_")

        async with client.realtime.connect(call_id=call_id) as conn:
            created = await conn.recv()
            assert created.type == "session.created" and created.session.type == "realtime"
            assert created.session.instructions == SESSION["instructions"]  # the call's session, from the secret
            await conn.session.update(session={"type": "realtime", "instructions": "Sideband instructions."})
            calls = []
            async for event in conn:  # ends when the fake caller hangs up
                if event.type == "response.function_call_arguments.done":
                    calls.append(event)
                elif event.type == "response.done" and calls:
                    for call in calls:
                        await conn.conversation.item.create(
                            item={"type": "function_call_output", "call_id": call.call_id, "output": "{}"}
                        )
                    calls = []
                    await conn.response.create()
        await client.realtime.calls.hangup(call_id)

    (session_log,) = fake.sessions
    assert session_log.kind == "call" and session_log.call_id == call_id
    assert [c["name"] for c in session_log.function_calls] == ["escalate_call"]
    assert session_log.function_calls[0]["arguments"]["level"] == "human"
    assert session_log.violations == []
    assert session_log.ended.is_set()
    assert fake.calls[call_id].state == "ended"
    assert_all_events_valid(fake)


async def test_sdk_honours_websocket_base_url():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(
            api_key="sk-test", base_url="http://127.0.0.1:9/v1", websocket_base_url=fake.websocket_base_url
        )
        async with client.realtime.connect(model="gpt-realtime-2.1-mini") as conn:
            created = await conn.recv()
    assert created.type == "session.created" and created.session.type == "realtime"
    assert created.session.model == "gpt-realtime-2.1-mini"
    (handshake,) = fake.requests_to("/realtime")
    assert handshake.query == {"model": "gpt-realtime-2.1-mini"}
    assert handshake.auth == "standard"


async def test_sdk_errors_arrive_as_typed_error_events_and_the_socket_stays_open():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
        async with client.realtime.connect(model="gpt-realtime-2.1") as conn:
            await conn.recv()
            await conn.response.cancel(event_id="evt_cancel_1")
            error = await conn.recv()
            await conn.session.update(session={"type": "realtime", "instructions": "still here"})
            updated = await conn.recv()
    assert error.type == "error"
    assert error.error.code == "response_cancel_not_active"
    assert error.error.event_id == "evt_cancel_1"
    assert updated.type == "session.updated"
    assert_all_events_valid(fake)


async def test_sdk_text_modality_response_and_truncate_round_trip():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
        async with client.realtime.connect(model="gpt-realtime-2.1") as conn:
            await conn.recv()
            await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await conn.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}
            )
            await conn.response.create()
            async for event in conn:
                if event.type == "response.done":
                    break
    types = fake.sessions[0].sent_types()
    assert "response.output_text.done" in types
    assert "response.output_audio.delta" not in types
    assert fake.sessions[0].events("response.done")[0]["response"]["status"] == "completed"
    assert_all_events_valid(fake)


async def test_sdk_beta_realtime_connect_is_refused_at_the_handshake():
    async with FakeOpenAI() as fake:
        # The beta client forces wss:// unless websocket_base_url is given.
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, websocket_base_url=fake.websocket_base_url)
        with pytest.raises(InvalidStatus) as refused:
            async with client.beta.realtime.connect(model="gpt-realtime-2.1") as conn:
                await conn.recv()
    assert refused.value.response.status_code == 400
    assert b"beta_api_shape_disabled" in refused.value.response.body
    assert fake.sessions == []
    assert fake.requests_to("/realtime")[0].headers["OpenAI-Beta"] == "realtime=v1"


async def test_sdk_beta_sessions_create_is_refused_with_beta_api_shape_disabled():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        with pytest.raises(openai.BadRequestError) as refused:
            await client.beta.realtime.sessions.create(model="gpt-realtime", voice="alloy", modalities=["audio"])
    assert refused.value.code == "beta_api_shape_disabled"
    assert refused.value.status_code == 400


async def test_sdk_unified_calls_create_with_session_and_hangup():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        raw = await client.realtime.calls.with_raw_response.create(sdp="v=0\r\ns=-\r\n", session=SESSION)
        call_id = raw.headers["location"].rsplit("/", 1)[-1]
        assert raw.status_code == 201
        call = fake.calls[call_id]
        assert call.created_via == "webrtc_unified"
        assert call.session["audio"]["output"]["voice"] == "marin"
        await client.realtime.calls.hangup(call_id)
        assert call.state == "ended"
        with pytest.raises(openai.NotFoundError):
            await client.realtime.calls.hangup("rtc_unknown")
