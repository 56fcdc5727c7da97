"""Shared by the Twilio webhook tests: the clinic's number, a caller, and one call placed through /twilio/voice.

The fixtures that use these (`twilio_settings`, `clinic`) live in realtime/tests/conftest.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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


def call_sid(call: Call) -> str:
    """The Twilio CallSid of a phone call (only web calls have none)."""
    assert call.twilio_call_sid is not None
    return call.twilio_call_sid


def element_at(element: ET.Element, path: str) -> ET.Element:
    """The TwiML element at `path`, which must be there."""
    found = element.find(path)
    assert found is not None, f"no {path} in <{element.tag}>"
    return found


def text_at(element: ET.Element, path: str) -> str:
    """The text of the TwiML element at `path` (a <Say>, a <Number>), which must be there."""
    found = element_at(element, path).text
    assert found is not None, f"<{path}> is empty"
    return found
