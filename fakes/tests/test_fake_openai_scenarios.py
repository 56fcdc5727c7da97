"""Every shipped scenario plays to the end through real sockets with a client that answers tools correctly, on both
the new-session path (`?model=`) and the sideband path (`?call_id=`); scenario files are checked as they load."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect

from calls.intake import validate_intake
from fakes.openai import FakeOpenAI, ScenarioError, list_scenarios, load_scenario
from fakes.openai.scenarios import scenario_from_dict
from fakes.openai.testing import drive_session, receptionist_session, validate_server_event
from organizations.models import DEFAULT_INTAKE_FIELDS, IntakeField

pytestmark = pytest.mark.slow

SHIPPED = [
    "after_hours_message",
    "chest_pain_emergency",
    "goodbye_then_emergency",
    "request_human",
    "routine_booking",
    "spanish_routine",
]


def test_the_required_scenarios_ship():
    assert [s.name for s in list_scenarios()] == SHIPPED


# goodbye_then_emergency needs a server that keeps listening after end_call (realtime/tests/test_sideband.py plays
# it); the generic players below stop at the goodbye.
PLAYABLE = [name for name in SHIPPED if name != "goodbye_then_emergency"]


@pytest.mark.parametrize("name", PLAYABLE)
async def test_a_shipped_scenario_plays_to_the_end_on_a_new_session(name):
    scenario = load_scenario(name)
    async with FakeOpenAI(scenario=name, time_scale=0.002) as fake:
        url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1"
        events = await drive_session(
            url, session=receptionist_session(), stop_when=lambda _: fake.sessions[0].script_done.is_set()
        )
    log = fake.sessions[0]
    assert log.violations == []
    assert [c["name"] for c in log.function_calls] == [c.name for c in scenario.tool_calls()]
    assert [c["arguments"] for c in log.function_calls] == [c.arguments for c in scenario.tool_calls()]
    assert set(log.tool_outputs) == {c["call_id"] for c in log.function_calls}
    caller_lines = [text for role, text in log.transcript() if role == "caller"]
    assert caller_lines == [t.caller for t in scenario.turns]
    assert all(e["response"]["status"] == "completed" for e in log.events("response.done"))
    assert events == log.sent
    for event in events:
        validate_server_event(event)


@pytest.mark.parametrize("name", PLAYABLE)
async def test_a_shipped_scenario_plays_on_a_sideband_call_and_the_caller_hangs_up(name):
    async with FakeOpenAI(time_scale=0.002) as fake:
        call_id = fake.register_call(scenario=name, session=receptionist_session())
        events = await drive_session(
            f"{fake.websocket_base_url}/realtime?call_id={call_id}", session={"type": "realtime"}
        )
    log = fake.sessions[0]
    assert log.kind == "call"
    assert log.violations == []
    assert log.script_done.is_set()
    assert log.ended.is_set()
    assert fake.calls[call_id].state == "ended"
    assert events[0]["type"] == "session.created"
    assert log.close_codes == [1000]


async def test_a_sideband_client_that_sends_no_session_update_still_gets_its_call_played():
    scenario = scenario_from_dict(
        {"name": "quiet", "start_after": 0.2, "hangup_after": 0, "turns": [{"caller": "Hello?", "agent": "Hi!"}]}
    )
    async with FakeOpenAI(time_scale=0.002) as fake:
        call_id = fake.register_call(scenario=scenario, session=receptionist_session())
        await drive_session(f"{fake.websocket_base_url}/realtime?call_id={call_id}")
    assert fake.sessions[0].transcript() == [("caller", "Hello?"), ("agent", "Hi!")]
    assert fake.sessions[0].received == []


def test_intakes_in_the_scenarios_are_complete_under_the_default_intake_fields():
    fields = [IntakeField(**spec) for spec in DEFAULT_INTAKE_FIELDS]
    intakes = [c.arguments for s in list_scenarios() for c in s.tool_calls() if c.name == "complete_intake"]
    assert len(intakes) == 3
    for intake in intakes:
        result = validate_intake(fields, intake)
        assert result.complete, (intake, result.errors, result.missing_required)
        assert result.data["urgency"] == "routine"


async def test_the_chest_pain_model_does_not_escalate_on_the_first_emergency_utterance():
    async with FakeOpenAI(scenario="chest_pain_emergency", time_scale=0.002) as fake:
        url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1"
        await drive_session(
            url, session=receptionist_session(), stop_when=lambda _: fake.sessions[0].script_done.is_set()
        )
    log = fake.sessions[0]
    first_response = log.events("response.done")[0]["response"]
    assert [item["type"] for item in first_response["output"]] == ["message"]
    assert "crushing chest pain" in log.transcript()[0][1]
    (call,) = log.function_calls
    assert call["name"] == "escalate_call"
    assert call["arguments"]["level"] == "emergency"


async def test_the_spanish_caller_is_transcribed_and_answered_in_spanish():
    session = receptionist_session()
    session["audio"]["input"]["transcription"] = {"model": "gpt-transcribe"}
    async with FakeOpenAI(scenario="spanish_routine", time_scale=0.002) as fake:
        url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1"
        await drive_session(url, session=session, stop_when=lambda _: fake.sessions[0].script_done.is_set())
    completed = fake.sessions[0].events("conversation.item.input_audio_transcription.completed")
    assert completed[0]["languages"] == [{"code": "es"}]
    assert fake.sessions[0].transcript()[1] == (
        "agent",
        "Claro que sí. ¿Cuál es el nombre completo de su hija y su fecha de nacimiento?",
    )


async def test_a_client_that_never_answers_a_tool_call_is_recorded_and_the_script_moves_on():
    async with FakeOpenAI(scenario="request_human", time_scale=0.002, answer_timeout=0.3) as fake:
        url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1"
        async with connect(url, additional_headers={"Authorization": "Bearer sk-test"}) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": receptionist_session()}))
            while not fake.sessions[0].script_done.is_set():  # read everything, answer nothing
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.05)
    (violation,) = fake.sessions[0].violations
    assert "not answered with function_call_output and response.create" in violation


async def test_a_tool_the_session_did_not_declare_is_recorded():
    async with FakeOpenAI(scenario="request_human", time_scale=0.002) as fake:
        url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1"
        await drive_session(
            url, session=receptionist_session(tools=[]), stop_when=lambda _: fake.sessions[0].script_done.is_set()
        )
    assert fake.sessions[0].violations == [
        "tool escalate_call not declared in the session when the call started",
        "the script calls escalate_call, which is not among the session's tools",
    ]


async def test_a_barge_in_turn_cancels_the_agent_with_turn_detected():
    scenario = scenario_from_dict(
        {
            "name": "barge_in",
            "turns": [
                {"caller": "Hello there", "delay": 0, "agent": "A long answer " * 20},
                {"caller": "Sorry, wait!", "delay": 0.3, "interrupt": True, "agent": "Yes?"},
            ],
        }
    )
    async with FakeOpenAI(scenario=scenario, time_scale=0.2) as fake:
        url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1"
        await drive_session(
            url, session=receptionist_session(), stop_when=lambda _: fake.sessions[0].script_done.is_set(), timeout=20
        )
    first, second = (e["response"] for e in fake.sessions[0].events("response.done"))
    assert first["status"] == "cancelled"
    assert first["status_details"]["reason"] == "turn_detected"
    assert second["status"] == "completed"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"turns": []}, "non-empty list"),
        ({"turns": [{"agent": "hi"}]}, "'caller' text"),
        ({"turns": [{"caller": "hi", "delay": -1}]}, "delay"),
        ({"turns": [{"caller": "hi", "agent": {"say": "x", "then": "y"}}]}, "'then' follows tool calls"),
        ({"turns": [{"caller": "hi", "agent": {"tool_calls": ["end_call"]}}]}, "tool_calls[0]"),
        ({"turns": [{"caller": "hi"}], "colour": "blue"}, "unknown keys"),
    ],
)
def test_a_broken_scenario_is_refused_with_a_message_naming_the_entry(data, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario_from_dict(data, source="broken.yaml")


def test_an_unknown_scenario_name_lists_the_shipped_ones(tmp_path):
    with pytest.raises(ScenarioError, match="routine_booking"):
        load_scenario("no_such_scenario")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"turns": [{"caller": "Hi", "agent": {"tool_calls": [{"end_call": {"reason": "x"}}]}}]}))
    scenario = load_scenario(path)
    assert scenario.name == "mine"
    assert scenario.tool_calls()[0].arguments == {"reason": "x"}
