"""A clinic that turns on call recording gets its phone calls recorded by Twilio (<Start><Recording>, both sides),
callers are told first, and staff play the recording on the call's page through the same authenticated, audited
proxy as voicemail (the fake Twilio serves the WAV on a real socket). A clinic that does not record gets nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.urls import reverse

from calls.models import AuditEvent, Call
from conftest import logged_in
from fakes.twilio.testing import TEST_PUBLIC_BASE_URL, twilio_post
from fakes.twilio.webhooks import new_call_sid, new_idempotency_token
from realtime.tests.twilio_helpers import CALLER, CLINIC_NUMBER, call_sid, element_at, text_at, voice_params

pytestmark = pytest.mark.usefixtures("twilio_settings")


@pytest.fixture
def recording_clinic(clinic):
    clinic.record_calls = True
    clinic.save(update_fields=["record_calls"])
    return clinic


def ring() -> tuple[Call, ET.Element]:
    sid = new_call_sid()
    response = twilio_post(Client(), "/twilio/voice", voice_params(call_sid=sid, caller=CALLER, called=CLINIC_NUMBER))
    assert response.status_code == 200
    return Call.objects.get(twilio_call_sid=sid), ET.fromstring(response.content)  # noqa: S314 - our TwiML


def report(call: Call, status: str = "completed", recording_sid: str = "RE" + "5" * 32, **kwargs):
    params = {
        "CallSid": call_sid(call),
        "RecordingSid": recording_sid,
        "RecordingStatus": status,
        "RecordingDuration": "95",
        "RecordingChannels": "2",
    }
    return twilio_post(Client(), "/twilio/call-recording-status", params, **kwargs)


def test_a_recording_clinics_call_is_recorded_from_the_start_and_the_caller_is_told(recording_clinic):
    _, root = ring()

    assert [child.tag for child in root] == ["Start", "Say", "Connect"]
    recording = element_at(root, "Start/Recording")
    assert recording.get("channels") == "dual"
    assert recording.get("recordingStatusCallback") == f"{TEST_PUBLIC_BASE_URL}/twilio/call-recording-status"
    assert recording.get("recordingStatusCallbackEvent") == "completed absent"
    assert text_at(root, "Say") == "This call is recorded."


def test_a_clinic_that_does_not_record_gets_no_recording_and_no_notice(clinic):
    _, root = ring()

    assert [child.tag for child in root] == ["Connect"]
    assert root.find(".//Recording") is None


def test_the_finished_recording_plays_on_the_calls_page_through_our_proxy(recording_clinic, staff_a, fake_twilio):
    call, _ = ring()
    sid = fake_twilio.add_recording(seconds=1.5)

    assert report(call, recording_sid=sid).status_code == 204
    call.refresh_from_db()
    client = logged_in(staff_a)
    page = client.get(reverse("admin:calls_call_change", args=[call.pk])).content.decode()
    audio = client.get(f"/console/calls/{call.pk}/call-recording.wav")

    assert call.metadata["recording"] == {"recording_sid": sid, "status": "completed", "duration": 95, "channels": 2}
    assert call.escalations.count() == 0  # a recorded call is not a voicemail: nobody is asked to call back
    assert f'src="/console/calls/{call.pk}/call-recording.wav"' in page and "The whole call" in page
    assert "twilio.com" not in page
    assert audio.status_code == 200
    assert b"".join(getattr(audio, "streaming_content")) == fake_twilio.recordings[sid]  # noqa: B009 - stubs lack it
    event = AuditEvent.objects.get(details__part="call_recording")
    assert (event.object_id, event.actor_user_id) == (str(call.pk), staff_a.pk)


def test_a_redelivered_report_changes_nothing(recording_clinic):
    call, _ = ring()
    token = new_idempotency_token()
    report(call, idempotency_token=token)
    call.refresh_from_db()
    before = call.metadata["recording"]

    assert report(call, idempotency_token=token).status_code == 204
    assert report(call, idempotency_token=new_idempotency_token()).status_code == 204  # a replay, fresh token
    call.refresh_from_db()
    assert call.metadata["recording"] == before


def test_a_recording_that_failed_at_twilio_says_so_and_has_nothing_to_play(recording_clinic, staff_a, fake_twilio):
    call, _ = ring()
    report(call, status="absent")
    client = logged_in(staff_a)

    page = client.get(reverse("admin:calls_call_change", args=[call.pk])).content.decode()

    assert "The whole call: the recording failed at Twilio." in page
    assert client.get(f"/console/calls/{call.pk}/call-recording.wav").status_code == 404
    assert fake_twilio.requests == []


def test_another_clinics_staff_get_404_and_twilio_is_never_asked(recording_clinic, staff_b, fake_twilio):
    call, _ = ring()
    report(call, recording_sid=fake_twilio.add_recording())

    assert logged_in(staff_b).get(f"/console/calls/{call.pk}/call-recording.wav").status_code == 404
    assert fake_twilio.requests == []


def test_an_unsigned_report_is_refused(recording_clinic):
    call, _ = ring()

    response = report(call, signature="forged")

    assert response.status_code == 403
    call.refresh_from_db()
    assert "recording" not in call.metadata
