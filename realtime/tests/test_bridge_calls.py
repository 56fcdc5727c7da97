"""Every shipped scenario as a phone call: fake Twilio -> daphne on a real socket -> the media bridge -> fake OpenAI
(scenario mode), with transfers to staff through the fake Twilio REST API."""

from __future__ import annotations

import json

import pytest

from calls.models import Call, Escalation, TranscriptSegment
from conftest import make_org
from fakes.openai import FakeOpenAI
from fakes.simulate_phone import simulate_phone_call
from fakes.twilio.rest_server import FakeTwilioRest
from fakes.twilio.testing import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    add_number,
    open_around_the_clock,
)
from organizations.models import Organization

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLINIC_NUMBER = "+14155550111"
GREETING = "Thank you for calling Clinic A. How can I help you today?"


@pytest.fixture
def twilio_rest(settings):
    with FakeTwilioRest(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as rest:
        settings.TWILIO_API_BASE_URL = rest.base_url
        yield rest


@pytest.fixture
def fake_openai(settings):
    started = []

    def start(scenario: str, time_scale: float = 0.1):
        fake = FakeOpenAI.start_in_thread(scenario=scenario, time_scale=time_scale)
        settings.OPENAI_BASE_URL = fake.base_url
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def clinic(*, open_now: bool = True, **config) -> Organization:
    org = make_org("clinic-a", agent_greeting=GREETING, **config)
    if open_now:
        open_around_the_clock(org)
    add_number(org, CLINIC_NUMBER)
    return org


def transcript(call: Call, *speakers: str) -> list[tuple[str, str]]:
    rows = call.segments.order_by("seq").values_list("speaker", "text")
    return [(speaker, text) for speaker, text in rows if not speakers or speaker in speakers]


def play(org, scenario, fake, phone, **kwargs):
    return simulate_phone_call(org, scenario, server_url=phone, fake_openai_url=fake.base_url, **kwargs)


def test_a_routine_booking_by_phone_is_transcribed_in_order_stores_the_intake_and_ends_with_goodbye(
    phone, fake_openai, twilio_rest
):
    org = clinic()
    fake = fake_openai("routine_booking")
    result = play(org, "routine_booking", fake, phone, fast_marks=True)

    call = result.call
    log = fake.sessions[0]
    assert call.channel == Call.Channel.PHONE
    assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.AGENT_ENDED
    assert call.metadata["twilio"]["stream_outcome"] == "goodbye"
    assert "<Dial" not in result.stream_ended_twiml and "<Hangup" in result.stream_ended_twiml
    # Everything the caller and the agent said, stored in the order it was said.
    assert transcript(call, "caller", "agent") == [tuple(line) for line in log.transcript()]
    assert call.intake.data["patient_name"] == "Maria Gonzalez"
    assert call.intake.data["callback_number"] == "+14155550123"
    assert not call.escalated
    assert log.violations == []
    assert twilio_rest.requests == []
    # The agent got the caller's frames (all but those in flight when the agent hung up: a loaded machine may hold
    # a second of them, 50 frames, so the bound is about frames lost, not speed) and the caller heard every byte of
    # the agent's audio (μ-law passthrough).
    assert 160 * (result.media.sent_frames - 50) <= log.audio_bytes_in <= 160 * result.media.sent_frames
    assert len(result.media.received_audio) == log.audio_bytes_out
    assert result.media.protocol_errors == []


def test_the_session_is_configured_for_mulaw_both_ways_and_the_agent_opens_with_the_clinics_greeting(
    phone, fake_openai
):
    org = clinic()
    fake = fake_openai("routine_booking")
    play(org, "routine_booking", fake, phone, fast_marks=True)

    received = fake.sessions[0].received
    assert [e["type"] for e in received[:2]] == ["session.update", "response.create"]
    session = received[0]["session"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert {tool["name"] for tool in session["tools"]} >= {"complete_intake", "escalate_call", "end_call"}
    assert GREETING in received[1]["response"]["instructions"]
    appends = [e for e in received if e["type"] == "input_audio_buffer.append"]
    assert appends and all(set(e) == {"type", "audio"} for e in appends)


def test_an_after_hours_message_is_taken_by_phone(phone, fake_openai):
    org = clinic(open_now=False, after_hours_policy=Organization.AfterHoursPolicy.TAKE_MESSAGE)
    fake = fake_openai("after_hours_message")
    result = play(org, "after_hours_message", fake, phone, fast_marks=True)

    call = result.call
    assert call.metadata["twilio"]["mode"] == "take_message"
    assert call.end_reason == Call.EndReason.AGENT_ENDED
    assert call.intake.data["patient_name"] == "David Chen"
    assert transcript(call, "caller", "agent") == [tuple(line) for line in fake.sessions[0].transcript()]


def test_a_spanish_caller_is_transcribed_and_the_intake_stored(phone, fake_openai):
    org = clinic(agent_languages=["en", "es"])
    fake = fake_openai("spanish_routine")
    result = play(org, "spanish_routine", fake, phone, fast_marks=True)

    assert result.call.intake.data["patient_name"] == "Sofía Ramírez"
    assert ("caller", "Se llama Sofía Ramírez, nació el 9 de septiembre de 2016.") in transcript(result.call)
    assert result.call.is_ended


def test_a_chest_pain_call_escalates_as_an_emergency_and_is_never_transferred(phone, fake_openai, twilio_rest):
    org = clinic()
    fake = fake_openai("chest_pain_emergency")
    result = play(org, "chest_pain_emergency", fake, phone, fast_marks=True)

    call = result.call
    assert call.escalated and call.escalation_level == Escalation.Level.EMERGENCY
    assert call.escalations.filter(level=Escalation.Level.EMERGENCY).exists()
    # Triage caught the first utterance and steered the agent to 911, on the phone path too.
    steering = [
        e
        for e in fake.sessions[0].received
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    ]
    assert steering and "911" in json.dumps(steering[0])
    assert call.segments.filter(speaker=TranscriptSegment.Speaker.SYSTEM, text__contains="emergency").exists()
    assert twilio_rest.requests == []  # an emergency never waits on a transfer
    assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.CALLER_HANGUP
    assert result.media.stopped


def test_asking_for_a_person_during_hours_transfers_the_call_to_the_clinics_phone(phone, fake_openai, twilio_rest):
    org = clinic()
    fake = fake_openai("request_human")
    result = play(org, "request_human", fake, phone, fast_marks=True)

    call = result.call
    [request] = twilio_rest.requests
    assert request.authorized and request.call_sid == call.twilio_call_sid
    twiml = request.form["Twiml"]
    assert "<Dial" in twiml and f"<Number>{org.escalation_phone}</Number>" in twiml
    assert f'callerId="{CLINIC_NUMBER}"' in twiml and 'answerOnBridge="true"' in twiml
    assert "/twilio/dial-result?leg=transfer" in twiml
    assert call.metadata["twilio"]["stream_outcome"] == "transfer"
    assert call.end_reason == Call.EndReason.TRANSFERRED
    assert call.escalations.filter(level=Escalation.Level.HUMAN).exists()
    # The agent said its line before the call moved on, and the bridge then let go of the stream.
    assert ("agent", "Of course. Let me get someone from the team for you.") in transcript(call)
    assert result.media.closed_by_server and result.stream_ended_twiml is None


@pytest.mark.parametrize("stop_on_redirect", ["before_reply", "after_reply"])
def test_a_transfer_is_recorded_as_transferred_when_twilios_stop_beats_the_rest_answer(
    phone, fake_openai, twilio_rest, stop_on_redirect
):
    # The redirect makes Twilio abandon the <Connect><Stream>: the stream sends `stop` and closes, maybe before the
    # REST answer reaches the bridge. That `stop` is the transfer taking the call, not the caller hanging up.
    twilio_rest.stop_on_redirect = stop_on_redirect
    org = clinic()
    fake = fake_openai("request_human")
    result = play(org, "request_human", fake, phone, fast_marks=True, twilio_rest=twilio_rest)

    call = result.call
    [request] = twilio_rest.requests
    assert "<Dial" in request.form["Twiml"]
    assert result.media.redirected
    if stop_on_redirect == "before_reply":  # after the answer, which side lets go first is a race either way
        assert result.media.stopped
    assert call.end_reason == Call.EndReason.TRANSFERRED and call.status == Call.Status.COMPLETED
    assert call.metadata["twilio"]["stream_outcome"] == "transfer"
    assert result.stream_ended_twiml is None


def test_asking_for_a_person_after_hours_records_the_request_without_a_transfer(phone, fake_openai, twilio_rest):
    org = clinic(open_now=False, after_hours_policy=Organization.AfterHoursPolicy.TAKE_MESSAGE)
    fake = fake_openai("request_human")
    result = play(org, "request_human", fake, phone, fast_marks=True)

    assert twilio_rest.requests == []
    assert result.call.escalations.filter(level=Escalation.Level.HUMAN).exists()
    assert result.call.end_reason == Call.EndReason.CALLER_HANGUP


def test_a_failed_transfer_keeps_the_caller_with_the_agent(phone, fake_openai, twilio_rest):
    org = clinic()
    twilio_rest.fail_next(status=500, count=5)
    fake = fake_openai("request_human")
    result = play(org, "request_human", fake, phone, fast_marks=True)

    assert len(twilio_rest.requests) == 1
    call = result.call
    assert "stream_outcome" not in call.metadata["twilio"]
    # The conversation went on to the end of the script, and the caller hung up normally.
    assert ("agent", "You're welcome. Please stay on the line.") in transcript(call)
    assert call.end_reason == Call.EndReason.CALLER_HANGUP


def test_everything_a_phone_call_changes_is_recorded_for_twilio(phone, fake_openai, twilio_rest):
    from calls.models import AuditEvent

    org = clinic()
    fake = fake_openai("routine_booking")
    play(org, "routine_booking", fake, phone, fast_marks=True)

    changes = AuditEvent.objects.filter(organization_id=org.pk, action__in=["create", "change"])
    assert {row.actor_service for row in changes} == {"twilio"}
    # The webhooks name Twilio (via telephony), the media stream's task does (via pipeline): never the URL.
    assert changes.get(object_type="call", action="create").via == "telephony"
    assert {row.via for row in changes.filter(object_type__in=["transcriptsegment", "intake"])} == {"pipeline"}
