"""Twilio's webhooks write for the "twilio" principal, named by the webhook decorator after the signature check."""

from __future__ import annotations

import pytest
from django.test import Client

from calls.models import AuditEvent
from fakes.twilio.testing import twilio_post
from realtime.tests.twilio_helpers import call_sid, start_phone_call

pytestmark = pytest.mark.usefixtures("twilio_settings")


def test_webhook_changes_are_recorded_for_twilio_through_telephony(clinic):
    call = start_phone_call()
    response = twilio_post(Client(), "/twilio/status", {"CallSid": call_sid(call), "CallStatus": "busy"})
    assert response.status_code == 204

    rows = list(AuditEvent.objects.filter(object_type="call", object_id=str(call.pk)).order_by("id"))
    assert rows[0].action == "create" and rows[-1].action == "change"
    assert {(row.actor_service, row.via, row.actor_user_id) for row in rows} == {("twilio", "telephony", None)}
    assert {"status", "end_reason", "ended_at"} <= set(rows[-1].details["fields"])
