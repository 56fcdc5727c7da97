"""What the real API does when a response is cut short, fails or a transcription fails, as the fake now models it
(openai SDK 3.57 docstrings of the events), and what the project's pipeline makes of it."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from calls.models import Call
from conftest import make_call
from fakes.openai import FakeOpenAI
from fakes.openai.scenarios import scenario_from_dict
from fakes.openai.testing import receptionist_session
from realtime.pipeline import CallEventPipeline

from .test_fake_openai_protocol import recv_until, send, socket

pytestmark = pytest.mark.slow

AUDIO = base64.b64encode(b"\xff" * 1600).decode()  # 200 ms of μ-law
LONG_REASON = "the caller said goodbye and confirmed there is nothing else they need from the clinic today"


def manual_session() -> dict:
    session = receptionist_session()
    session["audio"]["input"]["turn_detection"] = None  # each commit plays the next scripted line
    return session


async def one_turn(scenario: dict, *, cancel_on: str | None = None, until: str = "response.done") -> list[dict]:
    """Commit one caller turn, ask for the response, optionally cancel it at the first `cancel_on` event; every
    server event up to `until`."""
    fake_openai = FakeOpenAI(scenario=scenario_from_dict(scenario), time_scale=1.0, pace=0.5)
    async with fake_openai as fake, socket(fake) as ws:
        await send(ws, {"type": "session.update", "session": manual_session()})
        await recv_until(ws, "session.updated")
        await send(ws, {"type": "input_audio_buffer.append", "audio": AUDIO})
        await send(ws, {"type": "input_audio_buffer.commit"})
        events = await recv_until(
            ws,
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.input_audio_transcription.failed",
        )
        if until.startswith("conversation.item.input_audio_transcription"):
            return events
        await send(ws, {"type": "response.create"})
        if cancel_on is not None:
            events += await recv_until(ws, cancel_on)
            await send(ws, {"type": "response.cancel"})
        events += await recv_until(ws, until)
    return events


END_CALL_TURN = {
    "turns": [{"caller": "Thanks, bye.", "agent": {"tool_calls": [{"end_call": {"reason": LONG_REASON}}]}}],
}


def test_a_cancelled_function_call_is_closed_incomplete_and_the_pipeline_does_not_run_it(org_a):
    events = asyncio.run(one_turn(END_CALL_TURN, cancel_on="response.function_call_arguments.delta"))
    types = [e["type"] for e in events]
    # As the real API: arguments.done and output_item.done for the interrupted call, then response.done.
    args_done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert len(args_done["arguments"]) < len(json.dumps({"reason": LONG_REASON}))  # cut off
    item_done = next(e for e in events if e["type"] == "response.output_item.done")
    assert item_done["item"]["type"] == "function_call" and item_done["item"]["status"] == "incomplete"
    assert types.index("response.function_call_arguments.done") < types.index("response.done")
    assert events[-1]["response"]["status"] == "cancelled"

    call = make_call(org_a)
    result = CallEventPipeline(call).handle_many(events)
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and not result.ended
    assert not any(e["type"] == "conversation.item.create" for e in result.client_events)  # no tool output


def test_a_completed_function_call_still_runs(org_a):
    events = asyncio.run(one_turn(END_CALL_TURN))
    call = make_call(org_a)
    assert CallEventPipeline(call).handle_many(events).ended
    call.refresh_from_db()
    assert call.end_reason == Call.EndReason.AGENT_ENDED


def test_a_scripted_failure_ends_the_response_failed_with_an_error():
    scenario = {
        "response_failures": [{"status": "failed", "code": "server_error"}],
        "turns": [{"caller": "Hello?", "agent": "Hi, how can I help?"}],
    }
    done = asyncio.run(one_turn(scenario))[-1]["response"]
    assert done["status"] == "failed"
    assert done["status_details"]["type"] == "failed" and done["status_details"]["error"]["code"] == "server_error"


def test_a_scripted_incomplete_response_stops_half_way():
    scenario = {
        "response_failures": [{"status": "incomplete", "reason": "max_output_tokens"}],
        "turns": [{"caller": "Hello?", "agent": "Hi there, thank you for calling, how can I help you today?"}],
    }
    events = asyncio.run(one_turn(scenario))
    done = events[-1]["response"]
    assert done["status"] == "incomplete" and done["status_details"]["reason"] == "max_output_tokens"
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert said and said != "Hi there, thank you for calling, how can I help you today?"
    assert done["output"][0]["status"] == "incomplete"


def test_a_turn_can_fail_to_be_transcribed():
    scenario = {"turns": [{"caller": "(mumbling)", "transcription_failed": True, "agent": "Sorry?"}]}
    events = asyncio.run(one_turn(scenario, until="conversation.item.input_audio_transcription.failed"))
    failed = events[-1]
    assert failed["type"] == "conversation.item.input_audio_transcription.failed"
    assert failed["error"]["code"] and failed["item_id"] == events[0]["item_id"]


def test_response_failures_must_say_how_the_response_goes_wrong():
    from fakes.openai import ScenarioError

    with pytest.raises(ScenarioError, match=r"response_failures\[0\]"):
        scenario_from_dict({"response_failures": [{"status": "exploded"}], "turns": [{"caller": "hi"}]})
