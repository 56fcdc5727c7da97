"""Call status callbacks move a phone call forward only, and a redelivery changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call
from fakes.twilio.testing import twilio_post
from fakes.twilio.webhooks import new_call_sid, new_idempotency_token
from realtime.telephony.services import stream_end_mark
from realtime.tests.twilio_helpers import call_sid, start_phone_call

pytestmark = pytest.mark.usefixtures("twilio_settings")


@pytest.fixture
def phone_call(clinic) -> Call:
    call = start_phone_call()
    # Pretend the call started a while ago so a reported duration fits.
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - dt.timedelta(minutes=10))
    call.refresh_from_db()
    return call


def status(call: Call, call_status: str, *, duration: int | None = None, idempotency_token: str | None = None):
    params = {"CallSid": call_sid(call), "CallStatus": call_status}
    if duration is not None:
        params["CallDuration"] = str(duration)
    response = twilio_post(Client(), "/twilio/status", params, idempotency_token=idempotency_token)
    assert response.status_code == 204
    call.refresh_from_db()
    return call


def test_completed_ends_the_call_with_twilios_duration(phone_call):
    call = status(phone_call, "completed", duration=185)
    assert call.status == Call.Status.COMPLETED
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    assert call.duration_seconds == 185
    assert call.ended_at == call.started_at + dt.timedelta(seconds=185)


def test_completed_after_the_agent_said_goodbye_records_that_the_agent_ended_it(phone_call):
    stream_end_mark(call=phone_call, outcome="goodbye")
    assert status(phone_call, "completed", duration=60).end_reason == Call.EndReason.AGENT_ENDED


@pytest.mark.parametrize(
    ("twilio_status", "expected"),
    [
        ("busy", Call.Status.ABANDONED),
        ("no-answer", Call.Status.ABANDONED),
        ("canceled", Call.Status.ABANDONED),
        ("failed", Call.Status.FAILED),
    ],
)
def test_unconnected_outcomes_end_the_call_as_abandoned_or_failed(phone_call, twilio_status, expected):
    call = status(phone_call, twilio_status)
    assert call.status == expected
    assert call.ended_at is not None


def test_a_terminal_call_stays_terminal_whatever_arrives_later(phone_call):
    ended = status(phone_call, "completed", duration=30)
    for late in ("ringing", "in-progress", "failed", "busy", "completed"):
        call = status(phone_call, late, duration=999)
        assert (call.status, call.ended_at, call.duration_seconds) == (Call.Status.COMPLETED, ended.ended_at, 30)


def test_ringing_after_in_progress_is_ignored(phone_call):
    assert status(phone_call, "in-progress").metadata["twilio"]["status"] == "in-progress"
    call = status(phone_call, "ringing")
    assert call.metadata["twilio"]["status"] == "in-progress"
    assert call.status == Call.Status.IN_PROGRESS


def test_a_redelivered_callback_changes_nothing(phone_call):
    token = new_idempotency_token()
    status(phone_call, "in-progress", idempotency_token=token)
    before = Call.objects.get(pk=phone_call.pk).metadata
    for _ in range(5):
        call = status(phone_call, "in-progress", idempotency_token=token)
    assert call.metadata == before
    assert call.metadata["twilio"]["seen"].count(token) == 1


def test_a_replayed_completed_callback_cannot_end_a_later_call_twice(phone_call):
    token = new_idempotency_token()
    first = status(phone_call, "completed", duration=40, idempotency_token=token)
    again = status(phone_call, "completed", duration=99, idempotency_token=token)
    assert (again.status, again.ended_at, again.duration_seconds) == (first.status, first.ended_at, 40)


def test_a_callback_for_an_unknown_call_is_accepted_and_ignored(db):
    response = twilio_post(Client(), "/twilio/status", {"CallSid": new_call_sid(), "CallStatus": "completed"})
    assert response.status_code == 204
    assert Call.objects.count() == 0
