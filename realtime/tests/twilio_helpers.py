"""Shared by the Twilio webhook tests: the clinic's number, a caller, and one call placed through /twilio/voice.

The fixtures that use these (`twilio_settings`, `clinic`) live in realtime/tests/conftest.py."""

from __future__ import annotations

from django.test import Client

from calls.models import Call
from fakes.twilio.testing import twilio_post
from fakes.twilio.webhooks import new_call_sid, voice_params

CLINIC_NUMBER = "+14155550199"
CALLER = "+14155550123"


def start_phone_call() -> Call:
    """A caller rings CLINIC_NUMBER (a signed /twilio/voice webhook); returns the call it created."""
    sid = new_call_sid()
    twilio_post(Client(), "/twilio/voice", voice_params(call_sid=sid, caller=CALLER, called=CLINIC_NUMBER))
    return Call.objects.get(twilio_call_sid=sid)
