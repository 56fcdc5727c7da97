"""When the agent's stream ends unexpectedly or a transfer goes unanswered, the caller is never left in silence."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from calls.models import Call, Escalation
from calls.services import call_end
from fakes.twilio.testing import TEST_PUBLIC_BASE_URL, twilio_post
from fakes.twilio.webhooks import new_call_sid, new_idempotency_token
from organizations.models import BusinessHours
from realtime.telephony.services import stream_end_mark
from realtime.tests.twilio_helpers import CALLER, call_sid, element_at, start_phone_call, text_at

pytestmark = pytest.mark.usefixtures("twilio_settings")


def post_twiml(path: str, params: dict, **kwargs) -> ET.Element:
    response = twilio_post(Client(), path, params, **kwargs)
    assert response.status_code == 200
    return ET.fromstring(response.content)  # noqa: S314 - our own TwiML, not untrusted input


def stream_ended(call: Call, **kwargs) -> ET.Element:
    return post_twiml("/twilio/stream-ended", {"CallSid": call_sid(call), "CallStatus": "in-progress"}, **kwargs)


def dial_result(call: Call, dial_status: str, *, leg: str = "transfer", **kwargs) -> ET.Element:
    params = {
        "CallSid": call_sid(call),
        "DialCallStatus": dial_status,
        "DialCallSid": "CA" + "d" * 32,
        "DialCallDuration": "42" if dial_status == "completed" else "0",
    }
    return post_twiml(f"/twilio/dial-result?leg={leg}", params, **kwargs)


def assert_speaks_before_ending(root: ET.Element) -> None:
    verbs = [child.tag for child in root]
    assert verbs[0] == "Say", verbs


# --- stream ended -----------------------------------------------------------------------------------------------


def test_a_dropped_stream_during_hours_apologises_and_dials_the_clinic(clinic):
    call = start_phone_call()
    root = stream_ended(call)
    assert_speaks_before_ending(root)
    assert "sorry" in text_at(root, "Say").lower()
    dial = element_at(root, "Dial")
    assert text_at(dial, "Number") == clinic.escalation_phone
    assert dial.get("answerOnBridge") == "true"
    assert dial.get("timeout") == "20"
    assert dial.get("action") == f"{TEST_PUBLIC_BASE_URL}/twilio/dial-result?leg=fallback"
    call.refresh_from_db()
    assert call.metadata["twilio"]["fallback"] == "dial"


def test_a_premium_number_stored_as_the_escalation_phone_is_never_dialled_the_caller_gets_voicemail(clinic):
    from organizations.models import Organization

    # Written around the validators (an old row, a shell): the dial-time check still refuses it.
    Organization.objects.filter(pk=clinic.pk).update(escalation_phone="+882355000000")
    call = start_phone_call()
    root = stream_ended(call)
    assert root.find("Dial") is None and "+882355000000" not in ET.tostring(root, encoding="unicode")
    assert root.find("Record") is not None


def test_a_dropped_stream_after_hours_offers_voicemail(clinic):
    call = start_phone_call()
    BusinessHours.objects.filter(organization=clinic).delete()  # the clinic closed while the call was running
    root = stream_ended(call)
    assert_speaks_before_ending(root)
    record = element_at(root, "Record")
    assert record.get("maxLength") == "120"
    assert record.get("action") == f"{TEST_PUBLIC_BASE_URL}/twilio/voicemail"
    assert record.get("recordingStatusCallback") == f"{TEST_PUBLIC_BASE_URL}/twilio/recording-status"
    assert root.find("Dial") is None
    call.refresh_from_db()
    assert call.metadata["twilio"]["fallback"] == "voicemail"


def test_without_an_escalation_phone_the_fallback_is_voicemail_even_during_hours(clinic):
    clinic.escalation_phone = ""
    clinic.save()
    assert stream_ended(start_phone_call()).find("Record") is not None


@pytest.mark.parametrize("outcome", ["goodbye", "transfer"])
def test_after_a_normal_goodbye_or_transfer_the_stream_end_just_hangs_up(clinic, outcome):
    call = start_phone_call()
    stream_end_mark(call=call, outcome=outcome)
    root = stream_ended(call)
    assert [child.tag for child in root] == ["Hangup"]


def test_a_call_the_agent_ended_is_not_given_the_fallback(clinic):
    call = start_phone_call()
    call_end(call=call, reason=Call.EndReason.AGENT_ENDED)
    assert [child.tag for child in stream_ended(call)] == ["Hangup"]


def test_a_call_that_failed_upstream_still_gets_the_fallback(clinic):
    call = start_phone_call()
    call_end(call=call, reason=Call.EndReason.ERROR)  # e.g. OpenAI dropped and the bridge recorded it
    assert stream_ended(call).find("Dial") is not None


def test_stream_ended_for_an_unknown_call_still_says_something(db):
    root = post_twiml("/twilio/stream-ended", {"CallSid": new_call_sid()})
    assert_speaks_before_ending(root)
    assert root.find("Hangup") is not None


# --- dial result ------------------------------------------------------------------------------------------------


def test_an_answered_transfer_is_recorded_and_creates_no_escalation(clinic):
    call = start_phone_call()
    root = dial_result(call, "completed")
    assert [child.tag for child in root] == ["Hangup"]  # the caller already talked to a person
    call.refresh_from_db()
    assert call.metadata["transfer"]["outcome"] == "answered"
    assert call.metadata["transfer"]["duration"] == 42
    assert not call.escalations.exists()


@pytest.mark.parametrize("dial_status", ["busy", "no-answer", "failed"])
def test_an_unanswered_transfer_promises_a_callback_and_files_an_urgent_escalation(clinic, dial_status):
    call = start_phone_call()
    root = dial_result(call, dial_status)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "call you back" in text_at(root, "Say")
    call.refresh_from_db()
    assert call.metadata["transfer"]["outcome"] == dial_status
    escalation = call.escalations.get()
    assert (escalation.level, escalation.status, escalation.reason) == ("urgent", "open", "transfer_unanswered")
    assert CALLER in escalation.evidence
    assert call.escalated and call.escalation_level == "urgent"
    # The callback number is in the escalation, never in the call's metadata.
    assert CALLER not in str(call.metadata)


def test_a_redelivered_dial_result_files_one_escalation(clinic):
    call = start_phone_call()
    token = new_idempotency_token()
    dial_result(call, "no-answer", idempotency_token=token)
    Escalation.objects.filter(call=call).update(status="resolved", resolved_at=call.started_at)
    root = dial_result(call, "no-answer", idempotency_token=token)
    assert root.find("Say") is not None  # Twilio's retry still gets something to say
    assert call.escalations.count() == 1


def test_a_replayed_dial_result_with_a_fresh_idempotency_token_does_not_reopen_a_resolved_escalation(clinic):
    call = start_phone_call()
    dial_result(call, "no-answer", idempotency_token=new_idempotency_token())
    Escalation.objects.filter(call=call).update(status="resolved", resolved_at=call.started_at)
    for _ in range(40):  # more than the remembered tokens: the stored outcome still recognises the replay
        root = dial_result(call, "no-answer", idempotency_token=new_idempotency_token())
        assert root.find("Say") is not None
    assert list(call.escalations.values_list("reason", "status")) == [("transfer_unanswered", "resolved")]


def test_a_replayed_recording_status_with_a_fresh_idempotency_token_queues_one_callback(clinic):
    call = start_phone_call()
    params = {"CallSid": call_sid(call), "RecordingSid": "RE" + "2" * 32, "RecordingStatus": "completed"}
    for _ in range(3):
        response = twilio_post(Client(), "/twilio/recording-status", params, idempotency_token=new_idempotency_token())
        assert response.status_code == 204
        Escalation.objects.filter(call=call).update(status="resolved", resolved_at=call.started_at)
    assert list(call.escalations.values_list("reason", "status")) == [("voicemail_left", "resolved")]


def test_an_unanswered_on_call_forward_offers_voicemail(clinic):
    clinic.after_hours_policy = "forward_on_call"
    clinic.on_call_phone = "+14155550177"
    clinic.save()
    call = start_phone_call()
    root = dial_result(call, "no-answer", leg="on_call")
    assert_speaks_before_ending(root)
    assert root.find("Record") is not None
    assert call.escalations.get().level == "urgent"


# --- voicemail --------------------------------------------------------------------------------------------------


def test_a_recorded_voicemail_thanks_the_caller_and_queues_a_callback(clinic):
    call = start_phone_call()
    root = post_twiml(
        "/twilio/voicemail",
        {
            "CallSid": call_sid(call),
            "RecordingSid": "RE" + "1" * 32,
            "RecordingDuration": "17",
            "RecordingUrl": "https://api.twilio.com/x",
        },
    )
    assert [child.tag for child in root] == ["Say", "Hangup"]
    response = twilio_post(
        Client(),
        "/twilio/recording-status",
        {
            "CallSid": call_sid(call),
            "RecordingSid": "RE" + "1" * 32,
            "RecordingStatus": "completed",
            "RecordingDuration": "17",
        },
    )
    assert response.status_code == 204
    call.refresh_from_db()
    assert call.metadata["voicemail"] == {"recording_sid": "RE" + "1" * 32, "duration": 17, "status": "completed"}
    escalation = call.escalations.get()
    assert (escalation.level, escalation.reason) == ("human", "voicemail_left")
    assert CALLER in escalation.evidence
