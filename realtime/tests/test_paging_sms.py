"""SMS paging end to end: the page goes out through the fake Twilio over a real socket, the fake's signed status
callbacks reach the project under daphne (queued → sent → delivered), and a signed inbound `ACK` from the paged
number acknowledges the escalation as that on-call person; an `ACK` from anyone else changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.test import Client

from calls import notifications
from calls.models import Call, Escalation
from calls.services import escalation_create
from conftest import make_call
from fakes.twilio.rest_server import FakeTwilioRest
from fakes.twilio.testing import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL, add_number, twilio_post
from organizations.models import OnCallPerson
from organizations.vocabulary import PageStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLINIC_NUMBER = "+14155550199"
OTHER_NUMBER = "+14155550198"
ANN, ZED, STRANGER = "+14155550111", "+14155550133", "+14155550144"
SMS_URL = f"{TEST_PUBLIC_BASE_URL}/twilio/sms"


@pytest.fixture
def twilio(phone, settings) -> Iterator[FakeTwilioRest]:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    with FakeTwilioRest(
        account_sid=TEST_ACCOUNT_SID,
        auth_token=TEST_AUTH_TOKEN,
        auto_status=False,
        public_base_url=TEST_PUBLIC_BASE_URL,
        webhook_target=phone,
    ) as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def paged(twilio, org_a, org_b) -> Escalation:
    add_number(org_a, CLINIC_NUMBER)
    add_number(org_b, OTHER_NUMBER)
    OnCallPerson.objects.create(organization=org_a, name="Ann", mobile=ANN, position=0)
    OnCallPerson.objects.create(organization=org_b, name="Zed", mobile=ZED, position=0)
    call = make_call(org_a, channel=Call.Channel.PHONE)
    escalation, _ = escalation_create(call=call, level="emergency", source="keyword", reason="chest_pain")
    notifications.deliver_due()
    return escalation


def test_the_page_goes_out_and_twilio_reports_it_sent_then_delivered(twilio, paged):
    [message] = twilio.messages
    assert (message["to"], message["from"], message["status"]) == (ANN, CLINIC_NUMBER, "queued")
    page = paged.pages.get(channel="sms")
    assert (page.status, page.provider_id) == (PageStatus.SENT, message["sid"])

    outcomes = twilio.send_status(message["sid"])  # queued, sent, delivered, signed, to /twilio/sms-status

    assert outcomes == [204, 204, 204]
    page.refresh_from_db()
    assert page.status == PageStatus.DELIVERED and page.delivered_at is not None
    assert twilio.send_status(message["sid"], [("sent", "")]) == [204]  # a late callback never steps back
    page.refresh_from_db()
    assert page.status == PageStatus.DELIVERED


def test_an_undelivered_sms_shows_as_failed_with_twilios_code(twilio, paged):
    [message] = twilio.messages
    twilio.send_status(message["sid"], [("sent", ""), ("undelivered", "30003")])
    page = paged.pages.get(channel="sms")
    assert (page.status, page.last_error) == (PageStatus.FAILED, "twilio_30003")


def test_ack_from_the_paged_number_acknowledges_as_that_person_and_stops_paging(twilio, paged):
    outcome = twilio.send_inbound_sms(url=SMS_URL, sender=ANN, to=CLINIC_NUMBER, body=" ack ")

    assert outcome == 200
    paged.refresh_from_db()
    assert paged.status == Escalation.Status.ACKNOWLEDGED
    assert paged.acknowledged_by_person.name == "Ann" and paged.acknowledged_by is None
    assert paged.paging_next_at is None
    notifications.deliver_due(now=paged.created_at + dt.timedelta(minutes=30))
    assert len(twilio.messages) == 1  # nobody else is paged


@pytest.mark.parametrize(
    ("sender", "to", "body"),
    [
        (STRANGER, CLINIC_NUMBER, "ACK"),  # an unknown number
        (ZED, CLINIC_NUMBER, "ACK"),  # another clinic's on-call person
        (ANN, OTHER_NUMBER, "ACK"),  # the right person, to another clinic's number
        (ANN, CLINIC_NUMBER, "what is this?"),  # not an acknowledgement
    ],
)
def test_anything_but_ack_from_the_paged_number_changes_nothing(twilio, paged, sender, to, body):
    assert twilio.send_inbound_sms(url=SMS_URL, sender=sender, to=to, body=body) == 200
    paged.refresh_from_db()
    assert paged.status == Escalation.Status.OPEN and paged.acknowledged_by_person is None
    assert paged.paging_next_at is not None


def test_unsigned_or_forged_sms_webhooks_are_refused(twilio, paged):
    client = Client()
    params = {"MessageSid": "SM" + "a" * 32, "From": ANN, "To": CLINIC_NUMBER, "Body": "ACK"}
    assert client.post("/twilio/sms", params).status_code == 403
    forged = twilio_post(client, "/twilio/sms", params, signature="forged")
    assert forged.status_code == 403
    status = twilio_post(client, "/twilio/sms-status", {"MessageSid": "nope", "MessageStatus": "delivered"})
    assert status.status_code == 400
    paged.refresh_from_db()
    assert paged.status == Escalation.Status.OPEN
