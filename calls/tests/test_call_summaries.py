"""Post-call summaries: made after the call by the notification worker through the Responses API (the fake OpenAI
over a real socket), retried with back-off, never in the way of the call ending."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from openai.types.responses import Response

from calls import summaries
from calls.models import AuditEvent, Call, CallSummary
from calls.services import call_end, transcript_segments_append
from calls.summaries import BACKOFF_SECONDS, MAX_ATTEMPTS, SummaryError, parse_summary, transcript_text
from conftest import make_call
from fakes.openai import Failure, FakeOpenAI
from fakes.openai.responses import create_response

LINES = [
    ("caller", "Hi, this is Robert. I need to book an appointment about my knee, it still hurts."),
    ("agent", "I can help with that. What day suits you?"),
    ("caller", "Tuesday morning if possible, and please call me back to confirm."),
    ("agent", "I have noted Tuesday morning; the clinic will call you back to confirm."),
]


@pytest.fixture
def fake(settings):
    handle = FakeOpenAI.start_in_thread()
    settings.OPENAI_BASE_URL = handle.base_url
    settings.OPENAI_API_KEY = "sk-test-summaries"
    yield handle
    handle.stop()


def ended_call(org, lines=LINES, *, minutes_ago: int = 5) -> Call:
    call = make_call(org, minutes_ago=minutes_ago)
    transcript_segments_append(
        call=call,
        segments=[
            summaries_segment(speaker, text, index, call.started_at) for index, (speaker, text) in enumerate(lines)
        ],
    )
    return call_end(call=call, reason=Call.EndReason.CALLER_HANGUP, ended_at=call.started_at + dt.timedelta(minutes=2))


def summaries_segment(speaker: str, text: str, index: int, start: dt.datetime):
    from calls.services import SegmentInput

    return SegmentInput(speaker=speaker, text=text, occurred_at=start + dt.timedelta(seconds=10 * index))


def later(minutes: float = 1) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def responses_requests(fake) -> list:
    return fake.requests_to("/responses")


class TestTheCallEndsFirst:
    def test_ending_a_call_queues_a_pending_summary_and_asks_openai_nothing(self, org_a, fake):
        call = ended_call(org_a)
        assert call.status == Call.Status.COMPLETED
        summary = CallSummary.objects.get(call=call)
        assert summary.status == CallSummary.Status.PENDING
        assert summary.attempts == 0
        assert responses_requests(fake) == []

    def test_ending_an_ended_call_again_queues_nothing_more(self, org_a):
        call = ended_call(org_a)
        call_end(call=call)
        assert CallSummary.objects.filter(call=call).count() == 1

    def test_the_summary_waits_for_late_words_before_it_is_due(self, org_a, fake):
        ended_call(org_a, minutes_ago=0)
        summary = CallSummary.objects.get()
        summary.next_attempt_at = timezone.now() + dt.timedelta(seconds=summaries.SETTLE_SECONDS)
        summary.save()
        assert summaries.summarize_due(limit=5)["done"] == 0
        assert responses_requests(fake) == []


class TestStructuredOutput:
    def test_the_worker_stores_summary_reason_and_follow_up_from_the_schema_answer(self, org_a, fake):
        call = ended_call(org_a)
        assert summaries.summarize_due(now=later()) == {"done": 1, "pending": 0, "failed": 0}
        summary = CallSummary.objects.get(call=call)
        assert summary.status == CallSummary.Status.DONE
        assert summary.reason_for_call.startswith("Hi, this is Robert. I need to book an appointment")
        assert "Robert" in summary.summary
        assert summary.follow_up_needed is True
        assert summary.model == "gpt-5.4-mini"
        assert summary.input_tokens > 0 and summary.output_tokens > 0
        assert summary.attempts == 1
        # The transcript is still there: the summary sits beside it.
        assert call.segments.count() == len(LINES)

    def test_the_request_is_a_strict_json_schema_with_the_transcript_and_store_off(self, org_a, fake, settings):
        settings.SUMMARY_MODEL = "gpt-6-luna"
        ended_call(org_a)
        summaries.summarize_due(now=later())
        (request,) = responses_requests(fake)
        body = request.body
        assert body["model"] == "gpt-6-luna"
        assert body["store"] is False
        fmt = body["text"]["format"]
        assert fmt["type"] == "json_schema" and fmt["strict"] is True
        assert set(fmt["schema"]["required"]) == {"summary", "reason_for_call", "follow_up_needed"}
        assert "Caller: Tuesday morning if possible" in body["input"][0]["content"]
        assert CallSummary.objects.get().model == "gpt-6-luna"

    def test_a_routine_call_with_nothing_to_act_on_needs_no_follow_up(self, org_a, fake):
        ended_call(org_a, [("caller", "What time do you open on Saturdays?"), ("agent", "We open at nine.")])
        # "What time" asks a question the agent answered; the fake's rule reads only explicit things to act on.
        summaries.summarize_due(now=later())
        assert CallSummary.objects.get().follow_up_needed is False

    def test_making_the_summary_is_audited_as_the_summary_service(self, org_a, fake):
        call = ended_call(org_a)
        summaries.summarize_due(now=later())
        event = AuditEvent.objects.get(object_type="callsummary")
        assert event.actor_service == "openai-summary"
        assert event.object_id == str(call.pk)
        assert event.organization_id == org_a.pk
        assert "summary" in event.details["fields"]

    def test_a_call_where_nothing_was_said_is_summarized_without_asking_openai(self, org_a, fake):
        call = make_call(org_a)
        call_end(call=call, reason=Call.EndReason.INTERRUPTED)
        summaries.summarize_due(now=later())
        summary = CallSummary.objects.get(call=call)
        assert summary.status == CallSummary.Status.DONE
        assert summary.summary == summaries.NO_CONVERSATION
        assert summary.follow_up_needed is False and summary.model == ""
        assert responses_requests(fake) == []

    def test_without_an_openai_key_nothing_is_attempted(self, org_a, settings):
        settings.OPENAI_API_KEY = ""
        ended_call(org_a)
        assert summaries.summarize_due(now=later()) == {"done": 0, "pending": 0, "failed": 0}
        assert CallSummary.objects.get().attempts == 0


def _response(**overrides) -> Response:
    body = create_response(
        {
            "model": "gpt-5.4-mini",
            "input": "Caller: I need a refill.",
            "text": {"format": {"type": "json_schema", "name": "call_summary", "schema": summaries.SUMMARY_SCHEMA}},
        }
    )
    body.update(overrides)
    return Response.model_validate(body)


class TestParsing:
    def test_the_answer_is_read_from_the_message_not_from_the_first_output_item(self):
        response = _response()
        assert response.output[0].type == "reasoning"
        result = parse_summary(response, model="gpt-5.4-mini")
        assert result.reason_for_call == "I need a refill."
        assert result.follow_up_needed is True

    def test_a_refusal_gives_up_at_once(self):
        response = _response()
        message = response.output[1].model_dump()
        message["content"] = [{"type": "refusal", "refusal": "I can't help with that."}]
        refused = _response(output=[message])
        with pytest.raises(SummaryError) as error:
            parse_summary(refused, model="m")
        assert error.value.permanent

    def test_an_incomplete_answer_is_retried(self):
        cut = _response(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
        with pytest.raises(SummaryError) as error:
            parse_summary(cut, model="m")
        assert error.value.code == "response_incomplete:max_output_tokens"
        assert not error.value.permanent

    @pytest.mark.parametrize(
        "text",
        [
            '{"summary": "x"',
            '["not", "an", "object"]',
            '{"summary": 1, "reason_for_call": "", "follow_up_needed": true}',
        ],
    )
    def test_text_that_does_not_match_the_schema_is_retried(self, text):
        message = _response().output[1].model_dump()
        message["content"][0]["text"] = text
        with pytest.raises(SummaryError) as error:
            parse_summary(_response(output=[message]), model="m")
        assert not error.value.permanent

    def test_long_fields_are_clipped_to_what_the_columns_hold(self):
        message = _response().output[1].model_dump()
        message["content"][0]["text"] = (
            '{"summary": "' + "s" * 5000 + '", "reason_for_call": "' + "r" * 900 + '", "follow_up_needed": false}'
        )
        result = parse_summary(_response(output=[message]), model="m")
        assert len(result.summary) == summaries.SUMMARY_CHARS and len(result.reason_for_call) == summaries.REASON_CHARS


class TestRetries:
    def test_a_server_error_is_retried_with_back_off_until_it_passes(self, org_a, fake):
        fake.fake.failure = Failure(kind="server_error", path="/v1/responses", times=2)
        ended_call(org_a)
        now = later()
        assert summaries.summarize_due(now=now)["pending"] == 1
        summary = CallSummary.objects.get()
        assert (summary.status, summary.attempts, summary.last_error) == ("pending", 1, "http_500")
        assert summary.next_attempt_at == now + dt.timedelta(seconds=BACKOFF_SECONDS[0])
        # Not due again before its back-off.
        assert summaries.summarize_due(now=now + dt.timedelta(seconds=BACKOFF_SECONDS[0] - 1))["pending"] == 0
        now += dt.timedelta(seconds=BACKOFF_SECONDS[0])
        assert summaries.summarize_due(now=now)["pending"] == 1
        summary.refresh_from_db()
        assert summary.next_attempt_at == now + dt.timedelta(seconds=BACKOFF_SECONDS[1])
        now += dt.timedelta(seconds=BACKOFF_SECONDS[1])
        assert summaries.summarize_due(now=now)["done"] == 1
        summary.refresh_from_db()
        assert (summary.status, summary.attempts, summary.last_error) == ("done", 3, "")
        assert len(responses_requests(fake)) == 3

    def test_a_rate_limit_waits_at_least_what_the_server_asked(self, org_a, fake):
        fake.fake.failure = Failure(kind="rate_limit", path="/v1/responses", retry_after=90, times=1)
        ended_call(org_a)
        now = later()
        summaries.summarize_due(now=now)
        summary = CallSummary.objects.get()
        assert summary.last_error == "http_429"
        assert summary.next_attempt_at == now + dt.timedelta(seconds=90)

    def test_an_unreachable_openai_is_retried(self, org_a, fake, settings):
        settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
        ended_call(org_a)
        assert summaries.summarize_due(now=later())["pending"] == 1
        assert CallSummary.objects.get().last_error == "APIConnectionError"

    def test_after_the_last_attempt_it_gives_up_and_says_so(self, org_a, fake):
        fake.fake.failure = Failure(kind="server_error", path="/v1/responses")
        call = ended_call(org_a)
        now = later()
        for _ in range(MAX_ATTEMPTS):
            summaries.summarize_due(now=now)
            now += dt.timedelta(hours=2)
        summary = CallSummary.objects.get(call=call)
        assert (summary.status, summary.attempts) == ("failed", MAX_ATTEMPTS)
        assert summaries.summarize_due(now=now + dt.timedelta(days=1))["failed"] == 0  # given up: not retried
        call.refresh_from_db()
        assert call.status == Call.Status.COMPLETED  # the call record was never held up

    def test_a_request_openai_refuses_as_such_gives_up_at_once(self, org_a, fake):
        fake.fake.failure = Failure(kind="error", status=400, path="/v1/responses", times=1)
        ended_call(org_a)
        assert summaries.summarize_due(now=later())["failed"] == 1
        assert CallSummary.objects.get().last_error == "http_400"

    def test_a_claimed_summary_is_not_claimed_again_while_its_lease_runs(self, org_a):
        ended_call(org_a)
        now = later()
        assert len(summaries._claim(limit=5, now=now)) == 1
        assert summaries._claim(limit=5, now=now + dt.timedelta(minutes=1)) == []
        assert len(summaries._claim(limit=5, now=now + summaries.CLAIM_LEASE)) == 1


class TestBoundedTranscript:
    def test_a_long_transcript_keeps_its_start_and_end_and_says_what_was_left_out(self, org_a):
        lines = [("caller" if i % 2 else "agent", f"line {i:04d} " + "words " * 30) for i in range(400)]
        call = ended_call(org_a, lines)
        text = transcript_text(call, limit=5_000)
        assert len(text) <= 5_000
        assert text.startswith("Receptionist: line 0000")
        assert text.rstrip().endswith("words")
        assert "line 0399" in text
        assert "lines of the transcript left out here" in text

    def test_a_short_transcript_is_sent_whole(self, org_a):
        call = ended_call(org_a)
        text = transcript_text(call)
        assert text.count("\n") == len(LINES) - 1
        assert "left out" not in text


class TestWorkerAndBackfill:
    def test_the_notification_worker_makes_due_summaries(self, org_a, fake):
        call = ended_call(org_a, minutes_ago=10)
        out = io.StringIO()
        call_command("deliver_notifications", "--once", stdout=out)
        assert "summaries_done=1" in out.getvalue()
        assert CallSummary.objects.get(call=call).status == CallSummary.Status.DONE

    def test_summarize_calls_backfills_calls_without_a_summary_and_failed_ones(self, org_a, fake):
        old = ended_call(org_a, minutes_ago=30)
        CallSummary.objects.filter(call=old).delete()  # a call from before summaries existed
        failed = ended_call(org_a, minutes_ago=20)
        CallSummary.objects.filter(call=failed).update(status="failed", attempts=MAX_ATTEMPTS)
        live = make_call(org_a)
        out = io.StringIO()
        call_command("summarize_calls", stdout=out)
        assert "queued=2" in out.getvalue() and "done=2" in out.getvalue()
        assert set(CallSummary.objects.values_list("status", flat=True)) == {"done"}
        assert not CallSummary.objects.filter(call=live).exists()

    def test_summarize_calls_queue_only_leaves_them_to_the_worker(self, org_a, fake):
        call = ended_call(org_a)
        CallSummary.objects.filter(call=call).delete()
        call_command("summarize_calls", "--queue-only", stdout=io.StringIO())
        assert CallSummary.objects.get(call=call).status == CallSummary.Status.PENDING
        assert responses_requests(fake) == []
