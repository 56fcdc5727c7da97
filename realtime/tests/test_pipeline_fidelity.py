"""The pipeline against what the real Realtime API does (openai SDK 3.57 docstrings, issue 12): tools of cancelled
responses, asynchronous caller transcripts, interrupted agent lines, failed responses, emergency steering."""

import json

import pytest

from calls.models import Call
from conftest import make_call
from realtime.pipeline import STEER_WAIT_SECONDS, CallEventPipeline

from .test_pipeline import agent_said, arguments_done, created, function_call_item, tool_call, transcript, types

pytestmark = pytest.mark.django_db

EMERGENCY = "my dad has crushing chest pain and can't breathe"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def call(org_a):
    return make_call(org_a)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def pipeline(call, clock):
    return CallEventPipeline(call, clock=clock)


def finished(response_id, status="completed", output=(), **details):
    return {
        "type": "response.done",
        "response": {
            "id": response_id,
            "status": status,
            "status_details": details or None,
            "output": list(output),
            "usage": None,
        },
    }


def committed(item_id, previous=None):
    return {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}


def added(item_id, previous=None, role="assistant"):
    item = {"id": item_id, "type": "message", "role": role, "status": "in_progress", "content": []}
    return {"type": "conversation.item.added", "previous_item_id": previous, "item": item}


def truncated(item_id, ms):
    return {"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0, "audio_end_ms": ms}


class TestToolsOfCancelledResponses:
    def test_arguments_done_alone_runs_no_tool(self, pipeline, call):
        # Also emitted when a response is interrupted or cancelled: not a finished call.
        pipeline.handle(created("resp_1"))
        assert pipeline.handle(arguments_done("call_1", "end_call", {"reason": "bye"})).client_events == []
        call.refresh_from_db()
        assert not call.is_ended

    def test_an_incomplete_function_call_item_is_not_run(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        result = pipeline.handle(tool_call("call_1", "end_call", '{"reason": "by', status="incomplete"))
        after = pipeline.handle(finished("resp_1", "cancelled", reason="turn_detected"))
        assert result.client_events == [] and after.client_events == []
        call.refresh_from_db()
        assert call.status == Call.Status.IN_PROGRESS

    def test_a_completed_call_in_response_done_runs_once(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        item = function_call_item("call_1", "escalate_call", {"level": "human", "reason": "asked"})
        pipeline.handle(tool_call("call_1", "escalate_call", {"level": "human", "reason": "asked"}))
        result = pipeline.handle(finished("resp_1", output=[item]))
        assert types(result) == ["response.create"]  # the output went out with output_item.done, once
        assert call.escalations.count() == 1

    def test_a_completed_call_seen_only_in_response_done_is_run(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        item = function_call_item("call_1", "escalate_call", {"level": "human", "reason": "asked"})
        result = pipeline.handle(finished("resp_1", output=[item]))
        assert types(result) == ["conversation.item.create", "response.create"]
        assert call.escalations.count() == 1


class TestConversationOrder:
    def test_a_caller_transcript_after_the_agents_reply_is_shown_before_it(self, pipeline, call):
        pipeline.handle(committed("item_c1"))
        pipeline.handle(added("item_c1", role="user"))
        pipeline.handle(created("resp_1"))
        pipeline.handle(added("item_a1", previous="item_c1"))
        pipeline.handle(agent_said("item_a1", "Sure, what day works for you?"))
        pipeline.handle(transcript("item_c1", "I'd like to book a checkup."))  # transcription came late
        ordered = list(call.segments.order_by("position", "seq").values_list("speaker", flat=True))
        assert ordered == ["caller", "agent"]
        assert list(call.segments.order_by("seq").values_list("speaker", flat=True)) == ["agent", "caller"]

    def test_without_item_events_arrival_order_is_kept(self, pipeline, call):
        pipeline.handle(agent_said("item_a1", "Hello, how can I help?"))
        pipeline.handle(transcript("item_c1", "A refill please."))
        pipeline.handle(agent_said("item_a2", "Of course."))
        ordered = list(call.segments.order_by("position", "seq").values_list("text", flat=True))
        assert ordered == ["Hello, how can I help?", "A refill please.", "Of course."]

    def test_a_new_pipeline_on_the_same_call_goes_on_after_the_stored_transcript(self, pipeline, call, clock):
        pipeline.handle(committed("item_c1"))
        pipeline.handle(transcript("item_c1", "Hi, I need a refill."))
        again = CallEventPipeline(call, clock=clock)  # e.g. the sideband re-attached
        again.handle(added("item_a9"))
        again.handle(agent_said("item_a9", "Which medication?"))
        ordered = list(call.segments.order_by("position", "seq").values_list("speaker", flat=True))
        assert ordered == ["caller", "agent"]

    def test_tracked_items_are_bounded(self, pipeline):
        for n in range(500):
            pipeline.handle(added(f"item_{n}"))
        assert len(pipeline.state.positions) <= 64
        assert len(json.dumps(pipeline.state.to_dict())) < 8000


class TestInterruptedAgentLines:
    def test_a_truncation_after_the_transcript_marks_the_line(self, pipeline, call):
        pipeline.handle(agent_said("item_a1", "Your appointment is on Thursday at ten, and please bring"))
        pipeline.handle(truncated("item_a1", 1800))
        segment = call.segments.get(item_id="item_a1")
        assert (segment.interrupted, segment.heard_ms) == (True, 1800)

    def test_a_truncation_before_the_transcript_marks_the_line_when_it_is_stored(self, pipeline, call):
        pipeline.handle(truncated("item_a1", 950))
        pipeline.handle(agent_said("item_a1", "Let me read back your number: four one five"))
        segment = call.segments.get(item_id="item_a1")
        assert (segment.interrupted, segment.heard_ms) == (True, 950)
        assert pipeline.state.truncations == []

    def test_a_line_heard_to_the_end_is_not_interrupted(self, pipeline, call):
        pipeline.handle(agent_said("item_a1", "Goodbye."))
        segment = call.segments.get(item_id="item_a1")
        assert (segment.interrupted, segment.heard_ms) == (False, None)

    def test_pending_truncations_are_bounded(self, pipeline):
        for n in range(100):
            pipeline.handle(truncated(f"item_{n}", 10))
        assert len(pipeline.state.truncations) <= 8


class TestFailedResponses:
    def test_a_failed_response_is_counted_on_the_call(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        error = {"type": "server_error", "code": "server_error", "message": "x"}
        pipeline.handle(finished("resp_1", "failed", type="failed", error=error))
        pipeline.handle(created("resp_2"))
        pipeline.handle(finished("resp_2", "incomplete", type="incomplete", reason="max_output_tokens"))
        call.refresh_from_db()
        assert call.metadata["response_failures"] == {"failed": 1, "incomplete": 1, "last_code": "max_output_tokens"}

    def test_a_failed_steering_response_is_asked_for_again_once(self, pipeline, call):
        steer = pipeline.handle(transcript("item_1", EMERGENCY))
        assert types(steer)[-1] == "response.create"
        error = {"type": "server_error", "code": "server_error"}
        pipeline.handle(created("resp_s1"))
        retry = pipeline.handle(finished("resp_s1", "failed", type="failed", error=error))
        assert types(retry) == ["response.create"]
        assert "911" in retry.client_events[0]["response"]["instructions"]
        pipeline.handle(created("resp_s2"))
        assert pipeline.handle(finished("resp_s2", "failed", type="failed", error=error)).client_events == []

    def test_a_failed_ordinary_response_is_not_retried(self, pipeline):
        pipeline.handle(created("resp_1"))
        assert pipeline.handle(finished("resp_1", "failed", type="failed", error={"code": "x"})).client_events == []

    def test_a_failed_transcription_leaves_a_visible_placeholder_in_its_place(self, pipeline, call):
        pipeline.handle(committed("item_c1"))
        pipeline.handle(added("item_a1", previous="item_c1"))
        pipeline.handle(agent_said("item_a1", "Sorry, could you repeat that?"))
        failed = {
            "type": "conversation.item.input_audio_transcription.failed",
            "item_id": "item_c1",
            "content_index": 0,
            "error": {"type": "server_error", "code": "transcription_failed\nforged line", "message": "x"},
        }
        pipeline.handle(failed)
        first = call.segments.order_by("position", "seq").first()
        assert first.speaker == "caller" and first.metadata == {"transcription_failed": True}
        assert "could not be transcribed" in first.text


class TestEmergencySteering:
    def test_steering_waits_for_the_cancelled_responses_done(self, pipeline):
        pipeline.handle(created("resp_1"))
        steer = pipeline.handle(transcript("item_1", EMERGENCY))
        assert types(steer) == ["response.cancel", "conversation.item.create"]
        assert steer.client_events[0]["response_id"] == "resp_1"
        after = pipeline.handle(finished("resp_1", "cancelled", reason="client_cancelled"))
        assert types(after) == ["response.create"]

    def test_steering_cancels_the_response_the_callers_turn_is_starting_and_follows_its_done(self, pipeline):
        # The transcription came before response.created of the turn's own (server VAD) response.
        pipeline.handle(committed("item_1"))
        steer = pipeline.handle(transcript("item_1", EMERGENCY))
        assert types(steer) == ["conversation.item.create"]
        on_created = pipeline.handle(created("resp_auto"))
        assert on_created.client_events == [{"type": "response.cancel", "response_id": "resp_auto"}]
        after = pipeline.handle(finished("resp_auto", "cancelled", reason="client_cancelled"))
        assert types(after) == ["response.create"]
        assert "911" in after.client_events[0]["response"]["instructions"]

    def test_steering_is_sent_anyway_when_response_done_does_not_come(self, pipeline, clock):
        pipeline.handle(created("resp_1"))
        pipeline.handle(transcript("item_1", EMERGENCY))
        assert pipeline.wake_in() == pytest.approx(STEER_WAIT_SECONDS)
        clock.now += STEER_WAIT_SECONDS / 2
        assert pipeline.poll().client_events == []
        clock.now += STEER_WAIT_SECONDS
        late = pipeline.poll()
        assert types(late) == ["response.create"] and pipeline.wake_in() is None

    def test_steering_in_a_spanish_clinic_keeps_the_language_rule(self, org_a, clock):
        org_a.agent_languages = ["es", "en"]
        org_a.save()
        pipeline = CallEventPipeline(make_call(org_a), clock=clock)
        pipeline.handle(created("resp_1"))
        pipeline.handle(transcript("item_1", "mi papá tiene un dolor fuerte en el pecho y no puede respirar"))
        create = pipeline.handle(finished("resp_1", "cancelled")).client_events[0]
        instructions = create["response"]["instructions"]
        assert "911" in instructions and "Spanish" in instructions


def test_a_response_created_after_a_refused_steer_is_not_taken_for_the_steer(pipeline):
    pipeline.handle(transcript("item_1", EMERGENCY))  # nothing known to be running: the steer goes out at once
    refused = {"type": "error", "error": {"code": "conversation_already_has_active_response", "message": "x"}}
    pipeline.handle(refused)
    pipeline.handle(created("resp_auto"))
    assert pipeline.state.steering_response != "resp_auto"
    retry = pipeline.handle(finished("resp_auto"))
    assert types(retry) == ["response.create"] and "911" in retry.client_events[0]["response"]["instructions"]
