"""POST /openai/webhook: only deliveries signed with the project's secret, fresh and unaltered, do anything; a
redelivery does its work once; SIP calls to numbers we do not serve are rejected and leave nothing behind."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from calls.models import Call, WebhookReceipt
from fakes.openai import Failure
from fakes.openai.webhooks import encode, incoming_call_event, new_secret, signed_headers
from fakes.twilio.testing import add_number, open_around_the_clock
from organizations.models import Organization
from realtime.sip import SIP_BUSY, SIP_DECLINE, incoming_call_plan, sip_header, sip_uri_number

pytestmark = pytest.mark.django_db

SECRET = new_secret()
CLINIC_NUMBER = "+14155550177"
CALLER = "+16175550123"
URL = "/openai/webhook"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.OPENAI_WEBHOOK_SECRET = SECRET


def post(body: bytes, headers: dict[str, str]):
    extra = {k: v for k, v in headers.items() if k != "content-type"}
    return Client().post(URL, data=body, content_type="application/json", headers=extra)


def deliver(event: dict, *, secret: str = SECRET, webhook_id: str | None = None, timestamp: int | None = None):
    body = encode(event)
    return post(body, signed_headers(secret, body, webhook_id=webhook_id, timestamp=timestamp))


def other_event() -> dict:
    return {"object": "event", "id": "evt_1", "type": "response.completed", "created_at": 1, "data": {"id": "resp_1"}}


def nothing_written() -> bool:
    return not WebhookReceipt.objects.exists() and not Call.objects.exists()


def test_other_event_types_are_answered_200_and_ignored():
    response = deliver(other_event())
    assert response.status_code == 200 and response.json()["code"] == "ignored"
    assert nothing_written()


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_delivery_without_its_signature_headers_is_refused(missing):
    body = encode(other_event())
    headers = signed_headers(SECRET, body)
    del headers[missing]
    response = post(body, headers)
    assert response.status_code == 400 and response.json()["code"] == "missing_signature"


def test_a_delivery_signed_with_another_secret_is_refused():
    response = deliver(incoming_call_event("rtc_x", to=CLINIC_NUMBER, caller=CALLER), secret=new_secret())
    assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
    assert nothing_written()


@pytest.mark.parametrize("offset", [-310, 310, -3600, 86400])  # 300 s is the window; a second may pass
def test_a_timestamp_more_than_five_minutes_off_is_refused_even_when_signed(offset):
    event = incoming_call_event("rtc_x", to=CLINIC_NUMBER, caller=CALLER)
    response = deliver(event, timestamp=int(time.time()) + offset)
    assert response.status_code == 400 and response.json()["code"] == "stale_timestamp"
    assert nothing_written()


def test_without_a_configured_secret_nothing_is_accepted(settings):
    settings.OPENAI_WEBHOOK_SECRET = ""
    response = deliver(other_event())
    assert response.status_code == 400 and response.json()["code"] == "webhook_not_configured"


def test_only_post_is_allowed():
    assert Client().get(URL).status_code == 405


def test_a_signed_body_that_is_not_an_event_is_refused():
    body = b"[1, 2, 3]"
    response = post(body, signed_headers(SECRET, body))
    assert response.status_code == 400 and response.json()["code"] == "invalid_payload"


# --- forged, replayed, stale and mutated deliveries (hypothesis) ------------------------------------------------

_mutations = st.sampled_from(["body", "id", "timestamp", "signature", "secret"])


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations, position=st.integers(min_value=0, max_value=10_000), byte=st.integers(1, 255))
def test_any_change_to_a_signed_delivery_is_refused_and_writes_nothing(mutation, position, byte):
    event = incoming_call_event("rtc_mutated", to=CLINIC_NUMBER, caller=CALLER)
    body = encode(event)
    headers = signed_headers(SECRET, body, webhook_id="wh_original")
    if mutation == "body":
        data = bytearray(body)
        index = position % len(data)
        data[index] = (data[index] + byte) % 256 or 1
        body = bytes(data)
    elif mutation == "id":
        headers["webhook-id"] = "wh_other" + str(position)
    elif mutation == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1 + position % 250)
    elif mutation == "signature":
        signature = bytearray(headers["webhook-signature"].encode())
        index = 3 + position % (len(signature) - 3)
        signature[index] = ord("A") if signature[index] != ord("A") else ord("B")
        headers["webhook-signature"] = signature.decode()
    else:
        headers = signed_headers(new_secret(), body, webhook_id="wh_original")
    response = post(body, headers)
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid_signature", "invalid_payload", "stale_timestamp")
    assert nothing_written()


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(age=st.integers(min_value=310, max_value=10 * 365 * 86400), future=st.booleans())
def test_a_replay_outside_the_window_is_refused_whatever_its_age(age, future):
    stamp = int(time.time()) + (age if future else -age)
    response = deliver(incoming_call_event("rtc_old", to=CLINIC_NUMBER, caller=CALLER), timestamp=stamp)
    assert response.status_code == 400 and response.json()["code"] == "stale_timestamp"
    assert nothing_written()


# --- realtime.call.incoming: rejections (no call row), redeliveries ---------------------------------------------


@pytest.fixture
def ringing(fake_openai):
    """A SIP call ringing at the fake: deliver() its webhook as OpenAI would."""

    def ring(to: str = CLINIC_NUMBER) -> str:
        call_id = fake_openai.register_call()
        fake_openai.calls[call_id].created_via = "sip"
        fake_openai.calls[call_id].state = "incoming"
        return call_id

    return ring


def test_a_call_to_a_number_nobody_serves_is_rejected_with_603_and_leaves_no_call(fake_openai, ringing):
    call_id = ringing()
    response = deliver(incoming_call_event(call_id, to="+14155550100", caller=CALLER))
    assert response.status_code == 200 and response.json()["code"] == "rejected"
    assert fake_openai.calls[call_id].state == "rejected"
    assert fake_openai.calls[call_id].reject_status == SIP_DECLINE
    assert not Call.objects.exists()


def test_a_redelivery_of_the_same_webhook_id_does_its_work_once(fake_openai, ringing):
    call_id = ringing()
    event = incoming_call_event(call_id, to="+14155550100", caller=CALLER)
    first = deliver(event, webhook_id="wh_same")
    again = deliver(event, webhook_id="wh_same")  # signed afresh, as a retry is
    assert first.status_code == again.status_code == 200
    assert again.json()["code"] == "duplicate"
    assert len(fake_openai.requests_to(f"/realtime/calls/{call_id}/reject")) == 1
    assert WebhookReceipt.objects.count() == 1


def test_while_the_process_drains_new_sip_calls_are_rejected_busy(fake_openai, ringing, org_a, monkeypatch):
    add_number(org_a, CLINIC_NUMBER)
    open_around_the_clock(org_a)
    monkeypatch.setattr("realtime.sip.refuse_new_calls", lambda: True)
    call_id = ringing()
    response = deliver(incoming_call_event(call_id, to=CLINIC_NUMBER, caller=CALLER))
    assert response.json()["code"] == "rejected"
    assert fake_openai.calls[call_id].reject_status == SIP_BUSY
    assert not Call.objects.exists()


def test_a_failed_accept_ends_the_call_at_once_with_the_reason(fake_openai, ringing, org_a):
    add_number(org_a, CLINIC_NUMBER)
    open_around_the_clock(org_a)
    call_id = ringing()
    fake_openai.fake.failure = Failure(kind="server_error", path=f"/v1/realtime/calls/{call_id}/accept")
    response = deliver(incoming_call_event(call_id, to=CLINIC_NUMBER, caller=CALLER))
    assert response.status_code == 200 and response.json()["code"] == "failed"
    call = Call.objects.get(openai_call_id=call_id)
    assert call.status == Call.Status.FAILED and call.end_reason == Call.EndReason.ERROR
    assert call.metadata["sip"]["failure"] == "accept_failed"
    assert call.channel == Call.Channel.PHONE and call.caller_phone == CALLER
    assert call.organization == org_a


def test_the_answer_names_no_secret(fake_openai, ringing):
    call_id = ringing()
    response = deliver(incoming_call_event(call_id, to="+14155550100", caller=CALLER))
    assert SECRET not in response.content.decode() and "sk-" not in json.dumps(response.json())


# --- the plan: which clinic, which call row -----------------------------------------------------------------------


def headers_to(number: str, caller: str = CALLER) -> list[tuple[str, str]]:
    return [("From", f'"Pat" <sip:{caller}@pstn.twilio.com>;tag=1'), ("To", f"<sip:{number}@sip.api.openai.com>")]


def test_the_clinic_is_found_by_the_to_number_and_the_call_row_is_made_once_per_openai_call(org_a, org_b):
    add_number(org_a, "+14155550101")
    add_number(org_b, CLINIC_NUMBER)
    open_around_the_clock(org_b)
    plan = incoming_call_plan(webhook_id="wh_1", openai_call_id="rtc_1", headers=headers_to(CLINIC_NUMBER))
    assert plan.outcome == "accept" and plan.call is not None
    assert plan.call.organization == org_b and plan.call.channel == Call.Channel.PHONE
    assert plan.call.caller_phone == CALLER and plan.call.openai_call_id == "rtc_1"
    assert plan.call.metadata["sip"] == {"number": CLINIC_NUMBER, "mode": "open"}
    assert plan.session is not None and "format" not in plan.session["audio"]["input"]
    assert plan.greeting is not None and plan.greeting["type"] == "response.create" and not plan.forward_to
    # The same call delivered under another webhook-id (OpenAI re-sent it): nothing new.
    again = incoming_call_plan(webhook_id="wh_2", openai_call_id="rtc_1", headers=headers_to(CLINIC_NUMBER))
    assert again.outcome == "duplicate" and Call.objects.count() == 1


def test_after_hours_a_forwarding_clinic_refers_to_on_call_after_its_line(org_a):
    add_number(org_a, CLINIC_NUMBER)  # no hours: closed now
    org_a.after_hours_policy = Organization.AfterHoursPolicy.FORWARD_ON_CALL
    org_a.on_call_phone = "+14155550188"
    org_a.after_hours_message = "We are closed; connecting you to the doctor on call."
    org_a.save()
    plan = incoming_call_plan(webhook_id="wh_1", openai_call_id="rtc_1", headers=headers_to(CLINIC_NUMBER))
    assert plan.outcome == "accept" and plan.forward_to == "+14155550188"
    assert plan.call is not None and plan.call.metadata["sip"]["mode"] == "forward_on_call"
    assert "connecting you to the doctor on call" in json.dumps(plan.greeting)


def test_after_hours_a_message_taking_clinic_answers_with_the_agent(org_a):
    add_number(org_a, CLINIC_NUMBER)
    plan = incoming_call_plan(webhook_id="wh_1", openai_call_id="rtc_1", headers=headers_to(CLINIC_NUMBER))
    assert plan.outcome == "accept" and not plan.forward_to
    assert plan.call is not None and plan.call.metadata["sip"]["mode"] == "take_message"


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("<sip:+16175550110@sip.api.openai.com>", "+16175550110"),
        ('"Clinic" <sip:+16175550110@host;user=phone>;tag=abc', "+16175550110"),
        ("sip:16175550110@host", "+16175550110"),
        ("<tel:+1-617-555-0110>", "+16175550110"),
        ("tel:+16175550110;phone-context=x", "+16175550110"),
        ("<sips:+442071838750@host>", "+442071838750"),
        ("<sip:proj_abc@sip.api.openai.com>", ""),
        ("<sip:@host>", ""),
        ("mailto:x@y", ""),
        ("", ""),
        ("<sip:+0123@host>", ""),
    ],
)
def test_sip_uri_numbers_are_normalised_to_e164(value, number):
    assert sip_uri_number(value) == number


def test_compact_header_names_are_read():
    assert sip_header([("t", "<sip:+16175550110@x>")], "To") == "<sip:+16175550110@x>"
