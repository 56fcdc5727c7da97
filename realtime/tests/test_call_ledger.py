"""The ledger as the transports and the pipeline feed it: token details of every response.done (cancelled ones
too), caller transcription usage, and the turn latency each transport measures (phone bridge: first audio delta;
WebRTC sideband: output_audio_buffer.started)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from calls import ledger
from calls.models import Call
from conftest import make_call
from fakes.openai import FakeOpenAI, load_scenario
from realtime.latency import TurnClock
from realtime.pipeline import CallEventPipeline
from realtime.sideband import run_sideband

from .test_bridge_calls import clinic, play

DETAILS = {
    "input_tokens": 900,
    "output_tokens": 120,
    "total_tokens": 1020,
    "input_token_details": {
        "text_tokens": 600,
        "audio_tokens": 300,
        "cached_tokens": 500,
        "cached_tokens_details": {"text_tokens": 400, "audio_tokens": 100},
    },
    "output_token_details": {"text_tokens": 20, "audio_tokens": 100},
}


def response_done(response_id: str, status: str = "completed", usage: dict | None = None) -> dict:
    return {"type": "response.done", "response": {"id": response_id, "status": status, "output": [], "usage": usage}}


@pytest.fixture
def phone_fake(settings):
    fake = FakeOpenAI.start_in_thread(scenario="routine_booking", time_scale=0.1)
    settings.OPENAI_BASE_URL = fake.base_url
    yield fake
    fake.stop()


# --- the turn clock -------------------------------------------------------------------------------------------------


def test_the_clock_measures_from_speech_stopped_to_the_answers_first_audio():
    clock = TurnClock()
    clock.response_created("resp_greeting")  # no caller turn yet: the greeting is not a turn
    clock.audio("resp_greeting", 0.5)
    assert clock.take("resp_greeting") is None
    clock.speech_stopped(10.0)
    clock.audio("resp_greeting", 10.1)  # the tail of an earlier response is not the answer
    clock.response_created("resp_1")
    assert clock.waiting_for_audio
    clock.audio("resp_1", 10.75)
    clock.audio("resp_1", 11.0)  # later deltas do nothing
    assert not clock.waiting_for_audio
    assert clock.take("resp_1") == 750
    assert clock.take("resp_1") is None


def test_a_tool_call_without_audio_passes_the_turn_to_the_follow_up_response():
    clock = TurnClock()
    clock.speech_stopped(1.0)
    clock.response_created("resp_tool")
    assert clock.take("resp_tool") is None  # done with a function call and no audio
    clock.response_created("resp_follow_up")
    clock.audio("resp_follow_up", 2.2)
    assert clock.take("resp_follow_up") == 1200


# --- the pipeline ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_pipeline_sums_details_of_completed_and_cancelled_responses_and_the_turn_latency(org_a, settings):
    settings.REALTIME_MODEL = "gpt-realtime-2.1"
    call = make_call(org_a)
    pipeline = CallEventPipeline(call)
    pipeline.handle({"type": "response.created", "response": {"id": "resp_1"}})
    pipeline.handle(response_done("resp_1", usage=DETAILS), turn_latency_ms=640)
    pipeline.handle({"type": "response.created", "response": {"id": "resp_2"}})
    pipeline.handle(response_done("resp_2", status="cancelled", usage=DETAILS))

    call.refresh_from_db()
    assert ledger.call_usage(call) == {
        "input_text_tokens": 1200,
        "input_audio_tokens": 600,
        "input_cached_tokens": 1000,
        "output_text_tokens": 40,
        "output_audio_tokens": 200,
        "transcription_tokens": 0,
        "transcription_audio_ms": 0,
    }
    assert call.input_cached_audio_tokens == 200
    assert call.turn_latencies_ms == [640]
    assert call.usage["responses"] == 2 and call.realtime_model == "gpt-realtime-2.1"


@pytest.mark.django_db
def test_transcription_usage_is_recorded_even_when_nothing_was_heard(org_a):
    call = make_call(org_a)
    pipeline = CallEventPipeline(call)
    for item, text, seconds in (("item_1", "I need a refill.", 1.25), ("item_2", "", 0.5)):
        pipeline.handle(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": seconds},
            }
        )
    call.refresh_from_db()
    assert call.transcription_audio_ms == 1750
    assert call.segments.count() == 1


# --- the transports, end to end over real sockets -------------------------------------------------------------------


def _expected_from_fake(log, responses: int) -> tuple[dict[str, int], int]:
    """What the transport should have recorded from the fake's first `responses` response.done events: their summed
    token details, and how many of them answered a caller turn with audio (a response without audio, such as a tool
    call, passes its turn on to the next)."""
    totals = dict.fromkeys(
        ("input_text_tokens", "input_audio_tokens", "input_cached_tokens", "output_text_tokens", "output_audio_tokens"),
        0,
    )
    turns, pending, audio_of = 0, False, set()
    seen = 0
    for event in log.sent:
        kind = event["type"]
        if kind == "input_audio_buffer.speech_stopped":
            pending = True
        elif kind in ("response.output_audio.delta", "output_audio_buffer.started"):
            audio_of.add(event["response_id"])
        elif kind == "response.done":
            seen += 1
            if seen > responses:
                break
            usage = event["response"]["usage"]
            details, out = usage["input_token_details"], usage["output_token_details"]
            totals["input_text_tokens"] += details["text_tokens"]
            totals["input_audio_tokens"] += details["audio_tokens"]
            totals["input_cached_tokens"] += details["cached_tokens"]
            totals["output_text_tokens"] += out["text_tokens"]
            totals["output_audio_tokens"] += out["audio_tokens"]
            if pending and event["response"]["id"] in audio_of:
                turns, pending = turns + 1, False
    return totals, turns


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_phone_call_records_every_responses_usage_and_each_turns_latency(phone, phone_fake, settings):
    settings.REALTIME_TRANSCRIPTION_MODEL = "gpt-realtime-whisper"
    call = play(clinic(), "routine_booking", phone_fake, phone, fast_marks=True).call

    call.refresh_from_db()
    log = phone_fake.sessions[0]
    totals, turns = _expected_from_fake(log, call.usage["responses"])
    usage = ledger.call_usage(call)
    assert {key: usage[key] for key in totals} == totals
    assert usage["input_audio_tokens"] > 0 and usage["output_audio_tokens"] > 0
    assert len(call.turn_latencies_ms) == turns >= len(load_scenario("routine_booking").turns) - 1
    assert all(ms >= 0 for ms in call.turn_latencies_ms)
    heard = len(log.events("conversation.item.input_audio_transcription.completed"))
    assert call.transcription_audio_ms > 0 and heard == len(load_scenario("routine_booking").turns)
    cost = ledger.call_cost(call)
    assert cost is not None and cost > 0


@pytest.mark.django_db
def test_a_browser_call_measures_turns_by_playback_on_the_sideband(fake_openai, org_a):
    call = make_call(org_a, minutes_ago=0)
    openai_call_id = fake_openai.register_call(scenario="routine_booking")
    Call.objects.filter(pk=call.pk).update(openai_call_id=openai_call_id)
    ended = async_to_sync(run_sideband)(str(call.pk), openai_call_id)

    log = next(s for s in fake_openai.sessions if s.call_id == openai_call_id)
    assert log.events("output_audio_buffer.started")  # the fake reports playback on a WebRTC sideband
    totals, turns = _expected_from_fake(log, ended.usage["responses"])
    assert {key: ledger.call_usage(ended)[key] for key in totals} == totals
    assert len(ended.turn_latencies_ms) == turns == len(load_scenario("routine_booking").turns)
