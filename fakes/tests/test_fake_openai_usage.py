"""What the fake bills and how a call session reports playback: `response.done` usage with token details (cancelled
responses too), transcription usage by model, and `output_audio_buffer.*` on WebRTC/SIP sidebands only."""

from __future__ import annotations

import datetime as dt

import pytest

from fakes.openai import FakeOpenAI
from fakes.openai.scenarios import scenario_from_dict
from fakes.openai.testing import drive_session, receptionist_session, validate_server_event

pytestmark = pytest.mark.slow

BEFORE_TRANSCRIBE_SHUTDOWN = dt.datetime(2027, 2, 25, 23, 59, tzinfo=dt.UTC).timestamp()
TWO_TURNS = {
    "name": "two_turns",
    "hangup_after": 0,
    "turns": [
        {"caller": "Hi, I need to book a check-up.", "agent": "Of course. What day suits you?"},
        {"caller": "Tuesday morning, please.", "agent": "Tuesday at nine is free."},
    ],
}


async def play_on_sideband(scenario: dict, *, time_scale: float = 0.002, **session: object) -> list[dict]:
    async with FakeOpenAI(time_scale=time_scale) as fake:
        fake.clock = lambda: BEFORE_TRANSCRIBE_SHUTDOWN
        call_id = fake.register_call(scenario=scenario_from_dict(scenario), session=receptionist_session(**session))
        await drive_session(
            f"{fake.websocket_base_url}/realtime?call_id={call_id}", session={"type": "realtime"}, timeout=20
        )
    log = fake.sessions[0]
    assert log.violations == []
    for event in log.sent:
        validate_server_event(event)
    return log.sent


async def test_response_usage_splits_text_audio_and_cached_input():
    events = await play_on_sideband(TWO_TURNS)

    usages = [e["response"]["usage"] for e in events if e["type"] == "response.done"]
    assert len(usages) == 2
    first, second = usages
    for usage in usages:
        details = usage["input_token_details"]
        assert details["text_tokens"] > 0 and details["audio_tokens"] > 0  # the caller spoke before each answer
        assert usage["input_tokens"] == details["text_tokens"] + details["audio_tokens"]
        assert usage["output_token_details"]["audio_tokens"] > 0
        assert usage["output_tokens"] == sum(usage["output_token_details"].values())
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    # The second answer reads the first one's context again: that prefix is cached, and part of the input.
    assert first["input_token_details"]["cached_tokens"] == 0
    cached = second["input_token_details"]["cached_tokens_details"]
    assert cached["audio_tokens"] == first["input_token_details"]["audio_tokens"]
    assert second["input_token_details"]["cached_tokens"] == cached["text_tokens"] + cached["audio_tokens"]
    assert second["input_token_details"]["audio_tokens"] > cached["audio_tokens"]


async def test_a_barge_in_bills_the_cancelled_response_and_clears_the_callers_audio():
    events = await play_on_sideband(
        {
            "name": "barge_in",
            "hangup_after": 0,
            "turns": [
                {"caller": "Hello there", "delay": 0, "agent": "A long answer " * 20},
                {"caller": "Sorry, wait!", "delay": 0.3, "interrupt": True, "agent": "Yes?"},
            ],
        },
        time_scale=0.2,
    )

    cancelled, answered = (e["response"] for e in events if e["type"] == "response.done")
    assert cancelled["status"] == "cancelled"
    assert 0 < cancelled["usage"]["output_token_details"]["audio_tokens"] < len("A long answer " * 20) * 60 // 50
    buffer_events = [(e["type"], e["response_id"]) for e in events if e["type"].startswith("output_audio_buffer.")]
    # The cut answer is cleared, never "stopped"; the next one starts (its stop may come after the caller hung up).
    assert buffer_events[:3] == [
        ("output_audio_buffer.started", cancelled["id"]),
        ("output_audio_buffer.cleared", cancelled["id"]),
        ("output_audio_buffer.started", answered["id"]),
    ]
    assert ("output_audio_buffer.stopped", cancelled["id"]) not in buffer_events


async def test_playback_starts_after_the_audio_part_and_stops_after_the_response_on_a_call():
    events = await play_on_sideband(TWO_TURNS)

    types = [e["type"] for e in events]
    started = types.index("output_audio_buffer.started")
    first_done = types.index("response.done")
    # Playback starts with the first audio and ends once it has played out: after response.done, as upstream.
    assert types.index("response.content_part.added") < started < first_done
    # The audio itself goes to the caller over the call's media, never as events on the sideband.
    assert "response.output_audio.delta" not in types
    assert "response.output_audio_transcript.delta" in types
    assert types.index("output_audio_buffer.stopped") > first_done
    assert types.count("output_audio_buffer.started") == types.count("output_audio_buffer.stopped") == 2


async def test_a_websocket_session_reports_no_playback_events():
    async with FakeOpenAI(scenario=scenario_from_dict(TWO_TURNS), time_scale=0.002) as fake:
        await drive_session(
            f"{fake.websocket_base_url}/realtime?model=gpt-realtime-2.1",
            session=receptionist_session(),
            stop_when=lambda _: fake.sessions[0].script_done.is_set(),
        )
    assert not [t for t in fake.sessions[0].sent_types() if t.startswith("output_audio_buffer.")]


@pytest.mark.parametrize(
    ("model", "kind"),
    [("gpt-realtime-whisper", "duration"), ("gpt-transcribe", "duration"), ("gpt-4o-mini-transcribe", "tokens")],
)
async def test_transcription_usage_is_tokens_or_seconds_by_model(model, kind):
    session = receptionist_session()
    session["audio"]["input"]["transcription"] = {"model": model}
    events = await play_on_sideband(TWO_TURNS, audio=session["audio"])

    usages = [e["usage"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(usages) == 2
    assert {usage["type"] for usage in usages} == {kind}
    if kind == "duration":
        assert all(usage["seconds"] > 0 for usage in usages)
    else:
        assert all(usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0 for usage in usages)
