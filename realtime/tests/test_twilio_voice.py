"""The incoming-call webhook: the right TwiML for the clinic's hours and policy, one call per CallSid."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from calls.models import Call, hash_call_token
from fakes.twilio.testing import TEST_PUBLIC_BASE_URL, add_number, open_around_the_clock, twilio_post
from fakes.twilio.webhooks import new_call_sid, new_idempotency_token, voice_params
from realtime.telephony.services import stream_token_consume
from realtime.tests.twilio_helpers import CALLER, CLINIC_NUMBER, element_at

pytestmark = pytest.mark.usefixtures("twilio_settings")


@pytest.fixture
def clinic(org_a):
    """Unlike the shared `clinic`, no business hours: each test here chooses whether the clinic is open."""
    add_number(org_a, CLINIC_NUMBER)
    return org_a


def call_in(call_sid: str, *, idempotency_token: str | None = None, called: str = CLINIC_NUMBER):
    response = twilio_post(
        Client(),
        "/twilio/voice",
        voice_params(call_sid=call_sid, caller=CALLER, called=called),
        idempotency_token=idempotency_token,
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    return response, ET.fromstring(response.content)  # noqa: S314 - our own TwiML, not untrusted input


def stream_parameters(root: ET.Element) -> dict[str, str]:
    return {p.attrib["name"]: p.attrib["value"] for p in root.findall("./Connect/Stream/Parameter")}


def assert_streams(root: ET.Element) -> dict[str, str]:
    connect = root.find("Connect")
    assert connect is not None
    assert connect.get("action") == f"{TEST_PUBLIC_BASE_URL}/twilio/stream-ended"
    stream = element_at(connect, "Stream")
    assert stream.get("url") == "wss://voice.clinic.example/twilio/media"
    return stream_parameters(root)


def test_during_hours_the_call_is_connected_to_the_media_stream_with_a_one_time_token(clinic):
    open_around_the_clock(clinic)
    sid = new_call_sid()
    response, root = call_in(sid)

    call = Call.objects.get(twilio_call_sid=sid)
    assert (call.organization, call.channel, call.caller_phone, call.status) == (
        clinic,
        Call.Channel.PHONE,
        CALLER,
        Call.Status.IN_PROGRESS,
    )
    params = assert_streams(root)
    assert params["call_id"] == str(call.pk)
    token = params["stream_token"]
    # Only the hash is stored; the token is in a <Parameter>, never in a URL, and nothing about the caller is.
    assert call.stream_token_hash == hash_call_token(token)
    assert token not in call.stream_token_hash
    for element in root.iter():
        for name, value in element.attrib.items():
            if name != "value":
                assert token not in value
    assert CALLER.encode() not in response.content
    assert call.metadata["twilio"]["mode"] == "open"


@pytest.mark.parametrize("policy", ["take_message", "emergency_only"])
def test_after_hours_the_agent_still_answers_under_message_and_emergency_policies(clinic, policy):
    clinic.after_hours_policy = policy
    clinic.save()
    sid = new_call_sid()
    _response, root = call_in(sid)
    assert "stream_token" in assert_streams(root)
    assert Call.objects.get(twilio_call_sid=sid).metadata["twilio"]["mode"] == policy


def test_after_hours_forward_on_call_says_a_line_then_dials_the_on_call_phone(clinic):
    clinic.after_hours_policy = "forward_on_call"
    clinic.on_call_phone = "+14155550177"
    clinic.after_hours_message = "The office is closed; connecting you to Dr. On Call."
    clinic.save()
    sid = new_call_sid()
    _response, root = call_in(sid)

    assert root.find("Connect") is None
    assert root.find("Say").text == clinic.after_hours_message
    dial = root.find("Dial")
    assert dial.find("Number").text == "+14155550177"
    assert dial.get("action") == f"{TEST_PUBLIC_BASE_URL}/twilio/dial-result?leg=on_call"
    assert dial.get("answerOnBridge") == "true"
    assert dial.get("timeout") == "20"
    call = Call.objects.get(twilio_call_sid=sid)
    assert call.stream_token_hash == ""  # no stream, so no token to steal


def test_an_unknown_number_hears_that_it_is_not_in_service(clinic):
    _response, root = call_in(new_call_sid(), called="+14155550000")
    assert "not in service" in root.find("Say").text
    assert root.find("Hangup") is not None
    assert Call.objects.count() == 0


def test_a_replayed_voice_webhook_gets_no_stream_token_and_the_first_token_keeps_working(clinic):
    open_around_the_clock(clinic)
    sid = new_call_sid()
    _r, first = call_in(sid, idempotency_token=new_idempotency_token())
    # The same signed request again (a replay carries any idempotency token it likes: it is not signed).
    _r, replay = call_in(sid, idempotency_token=new_idempotency_token())

    assert Call.objects.filter(twilio_call_sid=sid).count() == 1
    call = Call.objects.get(twilio_call_sid=sid)
    assert replay.find("Connect") is None and "st_" not in ET.tostring(replay, encoding="unicode")
    assert replay.find("Dial/Number").text == clinic.escalation_phone  # the caller still reaches someone
    assert stream_token_consume(call.pk, stream_parameters(first)["stream_token"]) is not None


def test_a_replayed_webhook_after_the_stream_started_gets_the_fallback_not_a_second_stream(clinic):
    open_around_the_clock(clinic)
    sid = new_call_sid()
    _r, root = call_in(sid)
    call = Call.objects.get(twilio_call_sid=sid)
    assert stream_token_consume(call.pk, stream_parameters(root)["stream_token"]) is not None

    _r, replay = call_in(sid)
    assert replay.find("Connect") is None
    assert replay.find("Dial/Number").text == clinic.escalation_phone
    call.refresh_from_db()
    assert call.stream_token_hash == ""  # no new usable token was minted


def test_the_opening_line_is_not_in_the_twiml(clinic):
    # The bridge speaks the clinic's greeting (Organization.agent_greeting); TwiML carries ids only.
    open_around_the_clock(clinic)
    clinic.agent_greeting = "Thanks for calling Clinic A, this is the virtual receptionist."
    clinic.save()
    response, root = call_in(new_call_sid())
    assert root.find("Say") is None
    assert b"virtual receptionist" not in response.content
