"""The fake refuses protocol misuse the way the GA API does: an `error` event (connection kept), nothing else."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import cast

import httpx
import pytest
from openai.types.realtime import RealtimeSessionCreateRequestParam
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from fakes.openai import FakeOpenAI
from fakes.openai.testing import receptionist_session, validate_server_event

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def socket(fake: FakeOpenAI, query: str = "model=gpt-realtime-2.1", key: str = "sk-test"):
    async with connect(
        f"{fake.websocket_base_url}/realtime?{query}", additional_headers={"Authorization": f"Bearer {key}"}
    ) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "session.created"
        yield ws


async def send(ws, event: dict) -> None:
    await ws.send(json.dumps(event))


async def recv_until(ws, *types: str, timeout: float = 5.0) -> list[dict]:
    """Every event up to and including the first one of `types`."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            validate_server_event(event)
            seen.append(event)
            if event["type"] in types:
                return seen


async def test_response_create_while_a_response_is_active_is_refused_with_the_client_event_id():
    async with FakeOpenAI(time_scale=1.0) as fake, socket(fake) as ws:
        await send(ws, {"type": "response.create"})
        await recv_until(ws, "response.created")
        await send(ws, {"type": "response.create", "event_id": "evt_second"})
        events = await recv_until(ws, "error")
        await send(ws, {"type": "response.cancel"})
        await recv_until(ws, "response.done")
    error = events[-1]["error"]
    assert error["code"] == "conversation_already_has_active_response"
    assert error["event_id"] == "evt_second"
    assert fake.sessions[0].sent_types().count("response.created") == 1
    assert fake.sessions[0].violations == ["response.create while a response is active"]


async def test_response_cancel_without_an_active_response_is_refused():
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, {"type": "response.cancel", "event_id": "evt_c"})
        (error,) = await recv_until(ws, "error")
    assert error["error"]["code"] == "response_cancel_not_active"
    assert error["error"]["event_id"] == "evt_c"


async def test_response_cancel_ends_the_active_response_as_cancelled():
    async with FakeOpenAI(time_scale=1.0) as fake, socket(fake) as ws:
        await send(ws, {"type": "response.create"})
        await recv_until(ws, "response.output_audio.delta")
        await send(ws, {"type": "response.cancel"})
        events = await recv_until(ws, "response.done")
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"type": "response.audio.delta", "delta": "AAAA"}, "invalid_event"),  # a beta (and server) event name
        ({"type": "transcription_session.update", "session": {}}, "invalid_event"),
        ({}, "invalid_event"),  # no type at all
        ({"type": "session.update", "session": {"type": "realtime", "voice": "alloy"}}, "unknown_parameter"),
        ({"type": "session.update", "session": {"type": "realtime", "modalities": ["audio"]}}, "unknown_parameter"),
        ({"type": "session.update", "session": {"type": "realtime", "temperature": 0.8}}, "unknown_parameter"),
        ({"type": "session.update", "session": {"instructions": "no type"}}, "missing_required_parameter"),
        (
            {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": "g711_ulaw"}}}},
            "invalid_type",
        ),
        ({"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime-2"}}, "invalid_value"),
        (  # a voice the API does not have
            {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "nova"}}}},
            "invalid_value",
        ),
        (  # an audio format type the API does not have
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"output": {"format": {"type": "audio/wav"}}}},
            },
            "invalid_value",
        ),
        ({"type": "session.update", "session": {"type": "realtime", "speed_boost": 2}}, "unknown_parameter"),
        ({"type": "response.create", "response": {"modalities": ["text"]}}, "unknown_parameter"),
        ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_value"),
        ({"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty"),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "call_nope", "output": "{}"},
            },
            "invalid_value",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "beta"}]},
            },
            "invalid_value",
        ),
        (
            {"type": "conversation.item.truncate", "item_id": "item_missing", "content_index": 0, "audio_end_ms": 10},
            "invalid_value",
        ),
        ({"type": "output_audio_buffer.clear"}, "invalid_event"),  # WebRTC/SIP only
    ],
)
async def test_misuse_gets_an_error_event_and_the_session_goes_on(event, code):
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, {**event, "event_id": "evt_bad"})
        (error,) = await recv_until(ws, "error")
        await send(ws, {"type": "session.update", "session": {"type": "realtime", "instructions": "ok"}})
        (updated,) = await recv_until(ws, "session.updated")
    assert error["error"]["code"] == code
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["event_id"] == "evt_bad"
    assert updated["session"]["instructions"] == "ok"


async def test_invalid_json_is_an_error_event():
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await ws.send("{not json")
        (error,) = await recv_until(ws, "error")
    assert error["error"]["code"] == "invalid_json"


async def test_json_that_is_not_an_object_is_an_error_event_and_the_log_keeps_objects_only():
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await ws.send("[1, 2]")
        (error,) = await recv_until(ws, "error")
    assert error["error"]["code"] == "invalid_event"
    assert fake.sessions[0].received_types() == [None]  # readers of `received` can rely on dicts
    assert fake.sessions[0].received[0]["_raw"] == "[1, 2]"


async def test_session_update_merges_only_the_given_fields_and_fills_vad_defaults():
    async with FakeOpenAI() as fake, socket(fake) as ws:
        await send(ws, {"type": "session.update", "session": receptionist_session()})
        await recv_until(ws, "session.updated")
        await send(ws, {"type": "session.update", "session": {"type": "realtime", "instructions": "Changed."}})
        (updated,) = await recv_until(ws, "session.updated")
    session = updated["session"]
    assert session["instructions"] == "Changed."
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert [t["name"] for t in session["tools"]] == ["complete_intake", "escalate_call", "end_call"]


async def test_truncate_beyond_the_audio_produced_is_refused_and_within_it_is_accepted():
    async with FakeOpenAI(time_scale=0) as fake, socket(fake) as ws:
        await send(ws, {"type": "session.update", "session": receptionist_session()})
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, "response.done")
        item_id = events[-1]["response"]["output"][0]["id"]
        produced_ms = (
            sum(len(base64.b64decode(e["delta"])) for e in events if e["type"] == "response.output_audio.delta") // 8
        )  # pcmu: 8 bytes per ms
        await send(
            ws,
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": produced_ms + 20,
            },
        )
        (error,) = await recv_until(ws, "error")
        await send(
            ws,
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": produced_ms // 2,
            },
        )
        (truncated,) = await recv_until(ws, "conversation.item.truncated")
    assert error["error"]["code"] == "invalid_value"
    assert f"{produced_ms}ms" in error["error"]["message"]
    assert truncated["audio_end_ms"] == produced_ms // 2
    assert fake.sessions[0].truncations == [
        {"item_id": item_id, "audio_end_ms": produced_ms // 2, "produced_ms": produced_ms}
    ]


async def test_voice_cannot_change_after_the_model_has_spoken():
    async with FakeOpenAI(time_scale=0) as fake, socket(fake) as ws:
        await send(ws, {"type": "response.create"})
        await recv_until(ws, "response.done")
        await send(
            ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}}
        )
        (error,) = await recv_until(ws, "error")
    assert error["error"]["code"] == "cannot_update_voice"


async def test_response_create_before_the_tool_output_is_recorded_as_a_violation():
    async with FakeOpenAI(scenario="request_human", time_scale=0) as fake, socket(fake) as ws:
        await send(ws, {"type": "session.update", "session": receptionist_session()})
        await recv_until(ws, "response.function_call_arguments.done", timeout=10)
        await recv_until(ws, "response.done")
        await send(ws, {"type": "response.create"})  # forgot the function_call_output
        await recv_until(ws, "response.done")
    (violation,) = fake.sessions[0].violations
    assert violation.startswith("response.create before function_call_output for call_id call_")


async def test_manual_turns_commit_plays_the_next_scripted_caller_line():
    session = receptionist_session()
    session["audio"]["input"]["turn_detection"] = None
    async with FakeOpenAI(scenario="routine_booking", time_scale=0) as fake, socket(fake) as ws:
        await send(ws, {"type": "session.update", "session": session})
        await recv_until(ws, "session.updated")
        await send(ws, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\xff" * 1600).decode()})
        await send(ws, {"type": "input_audio_buffer.commit"})
        events = await recv_until(ws, "conversation.item.input_audio_transcription.completed")
        await send(ws, {"type": "response.create"})
        reply = await recv_until(ws, "response.output_audio_transcript.done")
    assert events[0]["type"] == "input_audio_buffer.committed"
    assert events[-1]["transcript"] == "Hi, I'd like to book a routine check-up, please."
    assert reply[-1]["transcript"].startswith("Of course, I can help with that.")


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        ("model=gpt-realtime-2.1", {}, 401, None),
        ("model=gpt-realtime-2.1", {"Authorization": "Bearer ek_forged"}, 401, "invalid_api_key"),
        (
            "model=gpt-realtime-2.1",
            {"Authorization": "Bearer sk-test", "OpenAI-Beta": "realtime=v1"},
            400,
            "beta_api_shape_disabled",
        ),
        ("", {"Authorization": "Bearer sk-test"}, 400, "missing_required_parameter"),
        ("model=gpt-4o", {"Authorization": "Bearer sk-test"}, 400, "invalid_value"),
        ("call_id=rtc_unknown", {"Authorization": "Bearer sk-test"}, 404, "call_not_found"),
    ],
)
async def test_bad_handshakes_are_refused_with_an_openai_error_body(query, headers, status, code):
    async with FakeOpenAI() as fake:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{fake.websocket_base_url}/realtime?{query}", additional_headers=headers):
                pass
    assert refused.value.response.status_code == status
    assert json.loads(refused.value.response.body)["error"]["code"] == code
    assert fake.sessions == []


async def test_an_ephemeral_key_opens_a_session_configured_by_its_secret():
    async with FakeOpenAI() as fake:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
        session = cast(RealtimeSessionCreateRequestParam, receptionist_session(instructions="From secret"))
        secret = await client.realtime.client_secrets.create(session=session)
        async with socket(fake, key=secret.value), socket(fake, key=secret.value):
            pass
    assert fake.sessions[0].headers["Authorization"] == "<redacted>"
    first, second = (log.events("session.created")[0]["session"] for log in fake.sessions)
    assert first["instructions"] == second["instructions"] == "From secret"
    assert first["id"] != second["id"]


async def test_hangup_closes_the_attached_sideband_socket_normally():
    async with FakeOpenAI() as fake:
        call_id = fake.register_call()
        async with socket(fake, query=f"call_id={call_id}") as ws:
            async with httpx.AsyncClient() as http:
                hung_up = await http.post(
                    f"{fake.base_url}/realtime/calls/{call_id}/hangup", headers={"Authorization": "Bearer sk-test"}
                )
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 5)
        with pytest.raises(InvalidStatus) as refused:
            async with socket(fake, query=f"call_id={call_id}"):
                pass
    assert hung_up.status_code == 200
    assert ws.close_code == 1000
    assert fake.sessions[0].ended.is_set()
    assert refused.value.response.status_code == 404


async def test_echo_mode_returns_each_appended_chunk_as_an_output_audio_delta():
    frames = [bytes([n]) * 160 for n in range(5)]
    async with FakeOpenAI(echo=True) as fake, socket(fake) as ws:
        for frame in frames:
            await send(ws, {"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()})
        echoed = [json.loads(await ws.recv()) for _ in frames]
    assert [base64.b64decode(e["delta"]) for e in echoed] == frames
    assert {e["type"] for e in echoed} == {"response.output_audio.delta"}
    assert len({e["event_id"] for e in echoed}) == len(frames)
    for event in echoed:
        validate_server_event(event)
    assert fake.sessions[0].received == []  # no per-frame logging in echo mode
    assert fake.sessions[0].audio_bytes_in == 800
