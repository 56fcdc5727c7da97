"""The call event pipeline: persistence as events arrive, idempotency, tool round trips, response gating."""

import json

import pytest

from calls.models import Call, Escalation, Intake
from conftest import make_call
from realtime.pipeline import CallEventPipeline, PipelineState

VALID_INTAKE = {
    "patient_name": "Maria Lopez",
    "date_of_birth": "1985-04-12",
    "callback_number": "(415) 555-0142",
    "reason_for_call": "Annual physical",
    "urgency": "routine",
}


def transcript(item_id, text):
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": item_id,
        "content_index": 0,
        "transcript": text,
        "event_id": "ev_" + item_id,
    }


def agent_said(item_id, text, response_id="resp_1"):
    return {
        "type": "response.output_audio_transcript.done",
        "item_id": item_id,
        "response_id": response_id,
        "output_index": 0,
        "content_index": 0,
        "transcript": text,
        "event_id": "ev_a_" + item_id,
    }


def created(response_id):
    return {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}


def done(response_id, **usage):
    return {
        "type": "response.done",
        "response": {"id": response_id, "status": "completed", "output": [], "usage": usage or None},
    }


def function_call_item(call_id, name, arguments, status="completed"):
    return {
        "id": "fc_" + call_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
    }


def tool_call(call_id, name, arguments, response_id="resp_1", status="completed"):
    """The finished function_call item (the event a tool runs on)."""
    return {
        "type": "response.output_item.done",
        "response_id": response_id,
        "output_index": 0,
        "item": function_call_item(call_id, name, arguments, status),
    }


def arguments_done(call_id, name, arguments, response_id="resp_1"):
    return {
        "type": "response.function_call_arguments.done",
        "response_id": response_id,
        "item_id": "fc_" + call_id,
        "output_index": 0,
        "call_id": call_id,
        "name": name,
        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
    }


def types(result):
    return [event["type"] for event in result.client_events]


@pytest.fixture
def call(org_a):
    return make_call(org_a)


@pytest.fixture
def pipeline(call):
    return CallEventPipeline(call)


@pytest.mark.django_db
class TestTranscripts:
    def test_each_utterance_is_stored_when_it_arrives_in_order(self, pipeline, call):
        pipeline.handle(transcript("item_1", "Hi, I'd like to book a checkup."))
        assert list(call.segments.values_list("seq", "speaker", "text")) == [
            (1, "caller", "Hi, I'd like to book a checkup.")
        ]
        pipeline.handle(agent_said("item_2", "Sure, may I have your name?"))
        assert list(call.segments.order_by("seq").values_list("speaker", flat=True)) == ["caller", "agent"]

    def test_a_redelivered_event_is_stored_once(self, pipeline, call):
        event = transcript("item_1", "I need a refill.")
        pipeline.handle(event)
        pipeline.handle(event)
        pipeline.handle(agent_said("item_2", "Of course."))
        pipeline.handle(agent_said("item_2", "Of course."))
        assert call.segments.count() == 2

    def test_empty_transcripts_and_unknown_events_store_nothing(self, pipeline, call):
        pipeline.handle(transcript("item_1", "   "))
        pipeline.handle({"type": "response.output_audio.delta", "delta": "AAAA"})
        pipeline.handle({"no_type": True})
        pipeline.handle("not even a dict")
        assert call.segments.count() == 0


@pytest.mark.django_db
class TestToolRoundTrip:
    def test_tool_output_goes_back_at_once_and_response_create_waits_for_response_done(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        result = pipeline.handle(tool_call("call_1", "complete_intake", VALID_INTAKE))
        assert types(result) == ["conversation.item.create"]
        item = result.client_events[0]["item"]
        assert item["type"] == "function_call_output" and item["call_id"] == "call_1"
        assert json.loads(item["output"])["complete"] is True
        # Only once the active response is done may a new one be requested.
        assert types(pipeline.handle(done("resp_1"))) == ["response.create"]
        intake = Intake.objects.get(call=call)
        assert intake.completed and intake.data["callback_number"] == "+14155550142"

    def test_a_redelivered_tool_call_runs_once(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        first = pipeline.handle(tool_call("call_1", "escalate_call", {"level": "human", "reason": "asked"}))
        again = pipeline.handle(tool_call("call_1", "escalate_call", {"level": "human", "reason": "asked"}))
        assert types(first) == ["conversation.item.create"] and again.client_events == []
        assert call.escalations.count() == 1

    def test_tool_call_after_its_response_finished_gets_response_create_immediately(self, pipeline):
        pipeline.handle(created("resp_1"))
        pipeline.handle(done("resp_1"))
        result = pipeline.handle(tool_call("call_1", "escalate_call", {"level": "human", "reason": "asked"}))
        assert types(result) == ["conversation.item.create", "response.create"]

    def test_response_done_before_response_created_does_not_leave_a_phantom_active_response(self, pipeline):
        pipeline.handle(done("resp_1"))
        pipeline.handle(created("resp_1"))
        assert not pipeline.response_active

    @pytest.mark.parametrize(
        ("name", "arguments", "error"),
        [
            ("book_flight", {}, "unknown_tool"),
            ("complete_intake", "{not json", "invalid_arguments"),
            ("complete_intake", "[1, 2]", "invalid_arguments"),
            ("escalate_call", {"level": "apocalyptic", "reason": "x"}, "invalid_level"),
            ("complete_intake", {**VALID_INTAKE, "date_of_birth": "12/04/85"}, "intake_invalid"),
            ("complete_intake", {**VALID_INTAKE, "favourite_colour": "blue"}, "intake_invalid"),
        ],
    )
    def test_bad_tool_calls_return_an_error_the_model_can_act_on(self, pipeline, call, name, arguments, error):
        pipeline.handle(created("resp_1"))
        result = pipeline.handle(tool_call("call_1", name, arguments))
        output = json.loads(result.client_events[0]["item"]["output"])
        assert output["ok"] is False and output["error"] == error and output["message"]
        # The agent never falls silent: a response follows once the current one is done.
        assert types(pipeline.handle(done("resp_1"))) == ["response.create"]
        assert not Intake.objects.filter(call=call).exists()

    def test_invalid_intake_field_errors_name_the_field(self, pipeline):
        result = pipeline.handle(tool_call("call_1", "complete_intake", {**VALID_INTAKE, "callback_number": "12"}))
        output = json.loads(result.client_events[0]["item"]["output"])
        assert list(output["fields"]) == ["callback_number"]

    def test_partial_intake_is_saved_and_the_model_is_told_what_is_missing(self, pipeline, call):
        result = pipeline.handle(tool_call("call_1", "complete_intake", {"patient_name": "Ann Lee"}))
        output = json.loads(result.client_events[0]["item"]["output"])
        assert output["saved"] is True and output["complete"] is False
        assert "date_of_birth" in output["missing"]
        assert Intake.objects.get(call=call).completed is False

    def test_escalate_call_marks_the_call_and_tells_the_model_what_to_say(self, pipeline, call):
        result = pipeline.handle(
            tool_call(
                "call_1",
                "escalate_call",
                {"level": "emergency", "reason": "chest pain", "caller_statement": "my chest hurts"},
            )
        )
        call.refresh_from_db()
        assert call.escalated and call.escalation_level == "emergency"
        escalation = call.escalations.get()
        assert escalation.source == Escalation.Source.AGENT_TOOL and escalation.evidence == "my chest hurts"
        assert "911" in json.loads(result.client_events[0]["item"]["output"])["next"]
        assert result.escalations == [escalation]

    def test_end_call_ends_the_call_and_asks_for_no_further_response(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        result = pipeline.handle(tool_call("call_1", "end_call", {"reason": "goodbye"}))
        assert result.ended and types(result) == ["conversation.item.create"]
        assert types(pipeline.handle(done("resp_1"))) == []
        call.refresh_from_db()
        assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.AGENT_ENDED


@pytest.mark.django_db
class TestLifecycle:
    def test_usage_from_response_done_is_summed_on_the_call(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        pipeline.handle(done("resp_1", input_tokens=100, output_tokens=20, total_tokens=120))
        pipeline.handle(created("resp_2"))
        pipeline.handle(done("resp_2", input_tokens=50, output_tokens=5, total_tokens=55))
        call.refresh_from_db()
        assert call.usage == {"input_tokens": 150, "output_tokens": 25, "total_tokens": 175, "responses": 2}

    def test_active_response_error_defers_the_response_until_the_running_one_is_done(self, pipeline):
        error = {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "x",
            },
        }
        assert types(pipeline.handle(error)) == []
        assert types(pipeline.handle(done("resp_9"))) == ["response.create"]

    def test_finish_is_idempotent(self, pipeline, call):
        pipeline.finish(Call.EndReason.CALLER_HANGUP)
        pipeline.finish(Call.EndReason.ERROR)
        call.refresh_from_db()
        assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.CALLER_HANGUP

    def test_max_call_length_ends_the_call(self, pipeline, call):
        assert not pipeline.check_deadline(call.started_at)
        assert pipeline.check_deadline(pipeline.deadline)
        call.refresh_from_db()
        assert call.end_reason == Call.EndReason.TIMEOUT

    def test_state_survives_a_round_trip_through_json(self, pipeline, call):
        pipeline.handle(created("resp_1"))
        pipeline.handle(tool_call("call_1", "escalate_call", {"level": "human", "reason": "asked"}))
        saved = json.loads(json.dumps(pipeline.state.to_dict()))
        restored = CallEventPipeline(call, state=PipelineState.from_dict(saved))
        assert restored.response_active
        assert types(restored.handle(tool_call("call_1", "escalate_call", {"level": "human", "reason": "x"}))) == []
        assert types(restored.handle(done("resp_1"))) == ["response.create"]


@pytest.mark.django_db
def test_a_refused_steering_response_is_retried_with_its_instructions(pipeline):
    # The emergency steer asks for a response at once; server VAD had already started one, so it is refused.
    steer = pipeline.handle(transcript("item_1", "my dad has crushing chest pain and can't breathe"))
    assert [e["type"] for e in steer.client_events][-1] == "response.create"
    error = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "conversation_already_has_active_response", "message": "x"},
    }
    pipeline.handle(error)
    retry = pipeline.handle(done("resp_auto"))
    assert types(retry) == ["response.create"]
    assert "911" in retry.client_events[0]["response"]["instructions"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("utterance", "first_number"),
    [
        ("my husband collapsed and he's not breathing", "911"),
        ("I don't want to live anymore, I want to kill myself", "988"),
    ],
)
def test_emergency_steering_gives_the_right_number_first(pipeline, call, utterance, first_number):
    result = pipeline.handle(transcript("item_1", utterance))
    system = next(e for e in result.client_events if e["type"] == "conversation.item.create")
    text = system["item"]["content"][0]["text"]
    assert system["item"]["role"] == "system"
    other = "988" if first_number == "911" else "911"
    assert first_number in text and (other not in text or text.index(first_number) < text.index(other))
    assert call.escalations.get().source == "keyword"
