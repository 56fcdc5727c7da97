"""Transfer to a human goes through Twilio's REST call update (here: the loopback fake)."""

from __future__ import annotations

import logging
import socket
import xml.etree.ElementTree as ET

import pytest
from asgiref.sync import async_to_sync

from calls.models import Call
from conftest import make_call
from fakes.twilio.testing import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from realtime.telephony.rest import TwilioRestError, atransfer_call
from realtime.tests.twilio_helpers import element_at, text_at

transfer_call = async_to_sync(atransfer_call)

CALL_SID = "CA" + "b" * 32
STAFF_PHONE = "+14155550100"
CLINIC_NUMBER = "+14155550199"


@pytest.fixture
def phone_call(org_a) -> Call:
    return make_call(org_a, channel=Call.Channel.PHONE, twilio_call_sid=CALL_SID)


def test_transfer_redirects_the_call_to_a_dial_with_a_callback_and_caller_id(fake_twilio, phone_call):
    resource = transfer_call(phone_call, STAFF_PHONE, caller_id=CLINIC_NUMBER, say="Connecting you to our nurse.")

    assert resource["sid"] == CALL_SID
    [request] = fake_twilio.requests
    assert request.authorized
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls/{CALL_SID}.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert set(request.form) == {"Twiml"}
    root = ET.fromstring(request.form["Twiml"])  # noqa: S314 - our own TwiML
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert text_at(root, "Say") == "Connecting you to our nurse."
    dial = element_at(root, "Dial")
    assert dial.get("action") == f"{TEST_PUBLIC_BASE_URL}/twilio/dial-result?leg=transfer"
    assert (dial.get("timeout"), dial.get("answerOnBridge"), dial.get("callerId")) == ("20", "true", CLINIC_NUMBER)
    assert text_at(dial, "Number") == STAFF_PHONE


async def test_the_async_transfer_works_from_an_event_loop(fake_twilio, phone_call):
    await atransfer_call(phone_call, STAFF_PHONE, caller_id=CLINIC_NUMBER)
    assert fake_twilio.requests[0].form["Twiml"].startswith("<?xml")


def test_a_twilio_error_becomes_a_clear_exception_without_the_token(fake_twilio, phone_call, caplog):
    fake_twilio.fail_next(status=404, code=20404, message="The requested resource was not found")
    with caplog.at_level(logging.DEBUG), pytest.raises(TwilioRestError) as caught:
        transfer_call(phone_call, STAFF_PHONE, caller_id=CLINIC_NUMBER)
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert "not found" in str(caught.value)
    assert TEST_AUTH_TOKEN not in str(caught.value)
    assert TEST_AUTH_TOKEN not in caplog.text


def test_wrong_credentials_are_refused_by_the_fake_like_twilio(fake_twilio, phone_call, settings):
    settings.TWILIO_AUTH_TOKEN = "a-wrong-token"
    with pytest.raises(TwilioRestError) as caught:
        transfer_call(phone_call, STAFF_PHONE, caller_id=CLINIC_NUMBER)
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert not fake_twilio.requests[0].authorized


def test_an_unreachable_twilio_is_a_network_error(settings, phone_call, caplog):
    settings.TWILIO_ACCOUNT_SID = TEST_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = TEST_AUTH_TOKEN
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{port}"
    with caplog.at_level(logging.DEBUG), pytest.raises(TwilioRestError) as caught:
        transfer_call(phone_call, STAFF_PHONE, caller_id=CLINIC_NUMBER)
    assert caught.value.code == "network" and caught.value.status is None
    assert TEST_AUTH_TOKEN not in caplog.text


def test_transfer_needs_twilio_credentials_and_a_call_sid(settings, org_a):
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(TwilioRestError) as caught:
        transfer_call(
            make_call(org_a, channel=Call.Channel.PHONE, twilio_call_sid=CALL_SID), STAFF_PHONE, caller_id=CLINIC_NUMBER
        )
    assert caught.value.code == "not_configured"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
    with pytest.raises(TwilioRestError) as caught:
        transfer_call(make_call(org_a), STAFF_PHONE, caller_id=CLINIC_NUMBER)
    assert caught.value.code == "no_call_sid"


def test_transfer_refuses_numbers_that_are_not_e164(fake_twilio, phone_call):
    with pytest.raises(ValueError, match=r"E\.164"):
        transfer_call(phone_call, "4155550100", caller_id=CLINIC_NUMBER)
    assert fake_twilio.requests == []
