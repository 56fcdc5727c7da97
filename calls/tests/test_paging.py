"""On-call paging: who is paged, when, by what, and that an outage of Twilio or SMTP delays pages without losing or
doubling any. SMS goes to the fake Twilio over a real loopback socket, e-mail to a real SMTP server (aiosmtpd) on
loopback or Django's in-memory outbox; time is the worker's `now`, never a sleep."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from calls import notifications, paging
from calls.board_view import escalation_pages
from calls.models import Call, Escalation, Page
from calls.services import escalation_acknowledge, escalation_create, escalation_resolve
from conftest import logged_in, make_call
from fakes.twilio.rest_server import FakeTwilioRest
from fakes.twilio.testing import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL, add_number
from organizations.models import OnCallPerson, PagingRule
from organizations.vocabulary import PageStatus

pytestmark = pytest.mark.django_db

CLINIC_NUMBER = "+14155550199"
ANN, BEN, ZED = "+14155550111", "+14155550122", "+14155550133"
LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def twilio(settings) -> Iterator[FakeTwilioRest]:
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
    settings.PUBLIC_BASE_URL = TEST_PUBLIC_BASE_URL
    settings.MAILERS = LOCMEM
    with FakeTwilioRest(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN, auto_status=False) as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def on_call(org_a, org_b):
    add_number(org_a, CLINIC_NUMBER)
    ann = OnCallPerson.objects.create(organization=org_a, name="Ann", mobile=ANN, email="ann@a.example", position=1)
    ben = OnCallPerson.objects.create(organization=org_a, name="Ben", mobile=BEN, position=2)
    zed = OnCallPerson.objects.create(organization=org_b, name="Zed", mobile=ZED, email="zed@b.example", position=0)
    return ann, ben, zed


def raise_emergency(org, **call_fields) -> Escalation:
    call = make_call(org, channel=Call.Channel.PHONE, caller_name="Jane Patient", caller_phone="+14155557777")
    escalation, _ = escalation_create(
        call=call, level="emergency", source="keyword", reason="chest_pain", evidence="crushing chest pain"
    )
    return escalation


def sms_to(twilio: FakeTwilioRest) -> list[str]:
    return [message["to"] for message in twilio.messages]


def later(escalation: Escalation, **delta: float) -> dt.datetime:
    return escalation.created_at + dt.timedelta(**delta)


@pytest.mark.django_db(transaction=True)
def test_a_new_emergency_pages_the_first_person_on_call_at_once_by_sms_and_email(twilio, on_call, org_a):
    escalation = raise_emergency(org_a)  # committed: the immediate attempt runs after commit, off this thread
    notifications.wait_for_in_flight(timeout=60)

    [sms] = twilio.messages
    assert (sms["to"], sms["from"]) == (ANN, CLINIC_NUMBER)
    [form] = [request.form for request in twilio.requests]
    assert form["StatusCallback"] == f"{TEST_PUBLIC_BASE_URL}/twilio/sms-status"
    link = f"{TEST_PUBLIC_BASE_URL}/admin/calls/escalation/{escalation.pk}/change/"
    assert "Emergency escalation at Clinic A" in sms["body"] and link in sms["body"]
    assert "Reply ACK" in sms["body"]
    # No patient data by default: no caller name, number or words.
    for secret in ("Jane", "7777", "chest", "crushing"):
        assert secret not in sms["body"]
    [email] = mail.outbox
    assert email.to == ["ann@a.example"] and link in email.body and "Jane" not in email.body
    pages = {page.channel: page for page in escalation.pages.all()}
    assert pages["sms"].status == PageStatus.SENT and pages["sms"].provider_id == sms["sid"]
    assert pages["email"].status == PageStatus.SENT


def test_the_caller_name_is_in_the_page_only_when_the_clinic_allows_it(twilio, on_call, org_a):
    org_a.paging_includes_caller_name = True
    org_a.save()
    escalation = raise_emergency(org_a)
    notifications.deliver_due(now=later(escalation, seconds=1))
    assert "Caller: Jane Patient." in twilio.messages[0]["body"]
    assert "chest" not in twilio.messages[0]["body"]


def test_without_acknowledgement_the_next_person_is_paged_after_the_interval_then_the_list_repeats(
    twilio, on_call, org_a
):
    escalation = raise_emergency(org_a)
    notifications.deliver_due(now=later(escalation, seconds=1))
    assert sms_to(twilio) == [ANN]

    notifications.deliver_due(now=later(escalation, minutes=2, seconds=59))
    assert sms_to(twilio) == [ANN]  # the emergency interval is 3 minutes
    notifications.deliver_due(now=later(escalation, minutes=3, seconds=1))
    assert sms_to(twilio) == [ANN, BEN]
    notifications.deliver_due(now=later(escalation, minutes=6, seconds=2))
    assert sms_to(twilio) == [ANN, BEN, ANN]  # round again
    assert [email.to for email in mail.outbox] == [["ann@a.example"], ["ann@a.example"]]  # Ben has no e-mail


def test_an_acknowledgement_stops_the_paging_and_cancels_pages_not_yet_sent(twilio, on_call, org_a, admin_a):
    escalation = raise_emergency(org_a)  # its first pages are queued (no commit in this test)
    escalation_acknowledge(escalation=escalation, user=admin_a)

    notifications.deliver_due(now=later(escalation, minutes=30))

    assert twilio.messages == [] and mail.outbox == []
    assert {page.status for page in escalation.pages.all()} == {PageStatus.CANCELED}
    escalation.refresh_from_db()
    assert escalation.paging_next_at is None


def test_resolving_stops_the_paging(twilio, on_call, org_a, admin_a):
    escalation = raise_emergency(org_a)
    notifications.deliver_due(now=later(escalation, seconds=1))
    escalation_resolve(escalation=escalation, user=admin_a, note="Called back, fine.")
    notifications.deliver_due(now=later(escalation, minutes=10))
    assert sms_to(twilio) == [ANN]


def test_levels_follow_the_clinic_rules(twilio, on_call, org_a):
    call = make_call(org_a)
    human, _ = escalation_create(call=call, level="human", source="agent_tool", reason="wants a person")
    urgent, _ = escalation_create(call=call, level="urgent", source="keyword", reason="high_fever")
    notifications.deliver_due(now=later(urgent, minutes=9))
    assert not human.pages.exists()  # human requests: board only by default
    assert sms_to(twilio) == [ANN]  # urgent pages, re-paging after 10 minutes
    notifications.deliver_due(now=later(urgent, minutes=10, seconds=1))
    assert sms_to(twilio) == [ANN, BEN]

    PagingRule.objects.create(organization=org_a, level="emergency", action="board", repage_minutes=3)
    assert not raise_emergency(org_a).pages.exists()


def test_a_page_never_goes_to_another_clinics_people(twilio, on_call, org_a, org_b):
    OnCallPerson.objects.filter(organization=org_a).update(active=False)
    escalation = raise_emergency(org_a)
    notifications.deliver_due(now=later(escalation, minutes=20))
    assert twilio.messages == [] and mail.outbox == []  # nobody on call at A; B's Zed is never asked

    add_number(org_b, "+14155550198")
    other = raise_emergency(org_b)
    notifications.deliver_due(now=later(other, seconds=1))
    assert sms_to(twilio) == [ZED]
    assert twilio.messages[0]["from"] == "+14155550198"
    assert {page.organization_id for page in Page.objects.all()} == {org_b.pk}


def test_a_twilio_outage_delays_the_sms_shows_failed_tries_and_sends_it_once(twilio, on_call, org_a, admin_a):
    escalation = raise_emergency(org_a)
    twilio.fail_next(status=503, code=20503, message="Service Unavailable", count=2)

    notifications.deliver_due(now=later(escalation, seconds=1))
    sms = escalation.pages.get(channel="sms")
    assert (sms.status, sms.last_error, sms.tries) == (PageStatus.FAILED, "twilio_20503", 1)
    page = logged_in(admin_a).get(reverse("admin:calls_escalation_change", args=[escalation.pk])).content.decode()
    assert "twilio_20503" in page and "Failed" in page  # staff see the failed try on the escalation

    notifications.deliver_due(now=later(escalation, seconds=3))  # back-off not over: no try
    assert len(twilio.requests) == 1
    notifications.deliver_due(now=later(escalation, seconds=7))
    notifications.deliver_due(now=later(escalation, seconds=30))
    sms.refresh_from_db()
    assert (sms.status, sms.tries) == (PageStatus.SENT, 3)
    assert sms_to(twilio) == [ANN]  # one message for the attempt, after two refused tries


def test_a_clinic_without_a_number_to_send_from_fails_visibly(twilio, on_call, org_b):
    escalation = raise_emergency(org_b)
    notifications.deliver_due(now=later(escalation, seconds=1))
    sms = escalation.pages.get(channel="sms")
    assert (sms.status, sms.last_error) == (PageStatus.FAILED, "no_sms_sender")
    assert escalation.pages.get(channel="email").status == PageStatus.SENT  # the e-mail still goes


def test_twilio_unreachable_is_retried_and_a_refused_number_is_not(twilio, on_call, org_a, settings):
    escalation = raise_emergency(org_a)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens
    notifications.deliver_due(now=later(escalation, seconds=1))
    sms = escalation.pages.get(channel="sms")
    assert (sms.status, sms.last_error) == (PageStatus.FAILED, "twilio_unreachable")
    assert sms.next_attempt_at is not None

    settings.TWILIO_API_BASE_URL = twilio.base_url
    twilio.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")
    notifications.deliver_due(now=later(escalation, seconds=10))
    sms.refresh_from_db()
    assert (sms.status, sms.last_error, sms.next_attempt_at) == (PageStatus.FAILED, "twilio_21211", None)
    notifications.deliver_due(now=later(escalation, minutes=2))
    assert twilio.messages == []  # a refusal is final for that attempt; the next re-page is a new attempt


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook by name
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


def test_an_smtp_outage_delays_the_email_and_loses_or_doubles_none(twilio, on_call, org_a, settings):
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd's readiness check connects to the port, so it cannot be 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10},
        }
    }
    try:
        first = raise_emergency(org_a)
        notifications.deliver_due(now=later(first, seconds=1))
        assert len(inbox.messages) == 1 and b"ann@a.example" in inbox.messages[0]

        server.stop()  # the SMTP server goes away mid-run
        second = raise_emergency(org_a)  # another call
        notifications.deliver_due(now=later(second, seconds=1))
        email = second.pages.get(channel="email")
        assert email.status == PageStatus.FAILED and email.last_error.startswith("smtp_")
        assert email.next_attempt_at is not None

        server = Controller(inbox, hostname="127.0.0.1", port=port)
        server.start()
        notifications.deliver_due(now=later(second, seconds=10))
        notifications.deliver_due(now=later(second, seconds=60))
    finally:
        server.stop()
    email.refresh_from_db()
    assert email.status == PageStatus.SENT
    ids = [line for message in inbox.messages for line in message.splitlines() if line.startswith(b"Message-ID")]
    assert ids == [
        f"Message-ID: <page-{first.pages.get(channel='email').pk}@voiceagent>".encode(),
        f"Message-ID: <page-{email.pk}@voiceagent>".encode(),
    ]  # each page once: none lost, none doubled


def test_a_claimed_page_is_not_claimed_again_and_a_lost_claim_is_never_resent(twilio, on_call, org_a):
    escalation = raise_emergency(org_a)
    now = later(escalation, seconds=1)
    claimed = paging._claim(ids=None, now=now, limit=10)
    assert len(claimed) == 2
    assert paging._claim(ids=None, now=now, limit=10) == []  # a second worker finds nothing to send

    paging.paging_pass(now=now + dt.timedelta(minutes=5))  # the first worker died mid-send
    assert {page.last_error for page in escalation.pages.filter(step=0)} == {"worker_lost_outcome_unknown"}
    assert sms_to(twilio) == [BEN]  # the escalation kept paging; the lost attempt was not sent again


def test_the_board_lists_each_page_attempt_and_who_acknowledged(twilio, on_call, org_a):
    escalation = raise_emergency(org_a)
    notifications.deliver_due(now=later(escalation, seconds=1))
    ann = on_call[0]
    escalation_acknowledge(escalation=escalation, person=ann)
    escalation.refresh_from_db()

    rows = escalation_pages(escalation)

    assert [(row["person"], row["channel"], row["status"]) for row in rows] == [
        ("Ann", "email", "sent"),
        ("Ann", "sms", "sent"),
    ]
    assert all(row["at"].tzinfo is not None and row["acknowledged_by"] == "Ann" for row in rows)
    assert escalation.acknowledged_by_person == ann and escalation.acknowledged_by is None


def test_the_escalation_console_page_shows_the_pages_to_its_clinic_only(twilio, on_call, org_a, admin_a, admin_b):
    escalation = raise_emergency(org_a)
    notifications.deliver_due(now=later(escalation, seconds=1))
    url = reverse("admin:calls_escalation_change", args=[escalation.pk])
    page = logged_in(admin_a).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Pages sent" in html and "Ann" in html and "Sent" in html
    assert logged_in(admin_b).get(url).status_code == 404


def test_an_escalation_raised_without_commit_sends_nothing(twilio, on_call, org_a):
    escalation = raise_emergency(org_a)
    assert timezone.now() >= escalation.created_at
    assert twilio.messages == []  # no commit in this test: the pages wait for the worker
    assert escalation.pages.filter(status=PageStatus.QUEUED).count() == 2
