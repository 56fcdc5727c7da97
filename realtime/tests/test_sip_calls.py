"""Phone calls over SIP end to end on real sockets: the fake OpenAI rings, posts the signed `realtime.call.incoming`
to the project under daphne, which accepts, attaches its sideband and runs the call through the same pipeline;
transfers go out as `refer`, keypad 0 asks for a person, the goodbye plays before the hangup."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from asgiref.sync import async_to_sync

from calls.models import Call, Escalation, Intake
from conftest import make_call
from fakes.openai.scenarios import scenario_from_dict
from fakes.openai.webhooks import new_secret, signed_headers
from fakes.twilio.testing import add_number, open_around_the_clock
from realtime.sideband import SipCall, run_sideband

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = new_secret()
CLINIC_NUMBER = "+14155550166"
STAFF_PHONE = "+14155550144"
GREETING = "Thank you for calling Clinic A over SIP. How can I help you today?"


@pytest.fixture
def sip(phone, fake_openai, settings):
    """Place a SIP call to the project; returns (our call once ended, the fake's call record, the session log)."""
    settings.OPENAI_WEBHOOK_SECRET = SECRET
    httpx.get(f"{phone}/healthz", timeout=60)  # the server's first request loads the URL map (slow on a busy machine)

    def place(scenario, *, to: str = CLINIC_NUMBER, deliveries: int = 1, timeout: float = 120.0, again: bool = False):
        delivery = fake_openai.run(
            fake_openai.place_sip_call(
                f"{phone}/openai/webhook", SECRET, to=to, scenario=scenario, deliveries=deliveries
            ),
            timeout=60,
        )
        codes = [json.loads(answer)["code"] for answer in delivery.answers]
        call = Call.objects.filter(openai_call_id=delivery.call_id).first()
        deadline = time.monotonic() + timeout
        while call is not None and not call.is_ended and time.monotonic() < deadline:
            time.sleep(0.05)
            call.refresh_from_db()
        record = fake_openai.calls[delivery.call_id]
        while record.state == "active" and time.monotonic() < deadline:  # our hangup follows the call's end
            time.sleep(0.05)
        if again:  # OpenAI retries the delivery (signed afresh, same webhook-id)
            headers = signed_headers(SECRET, delivery.body, webhook_id=delivery.webhook_id)
            retry = httpx.post(f"{phone}/openai/webhook", content=delivery.body, headers=headers, timeout=60)
            codes.append(retry.json()["code"])
        log = next((s for s in fake_openai.sessions if s.call_id == delivery.call_id), None)
        return call, record, log, codes

    return place


@pytest.fixture
def clinic(org_a):
    org_a.agent_greeting = GREETING
    org_a.escalation_phone = STAFF_PHONE
    org_a.save()
    add_number(org_a, CLINIC_NUMBER)
    open_around_the_clock(org_a)
    return org_a


def agent_lines(call: Call) -> list[str]:
    return list(call.segments.filter(speaker="agent").order_by("seq").values_list("text", flat=True))


def test_a_routine_sip_call_greets_first_runs_the_pipeline_and_hangs_up_after_the_goodbye(sip, clinic, fake_openai):
    call, record, log, codes = sip("routine_booking")
    assert codes == ["accepted"]
    assert call is not None and call.channel == Call.Channel.PHONE and call.organization == clinic
    assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.AGENT_ENDED
    assert call.caller_phone == "+16175550123" and call.metadata["sip"]["mode"] == "open"
    assert Intake.objects.get(call=call).completed
    # The agent spoke first, with the clinic's greeting; the caller's words and the agent's were stored in order.
    assert log is not None and log.received[0]["type"] == "response.create"
    assert GREETING in json.dumps(log.received[0])
    stored = list(call.segments.exclude(speaker="system").order_by("seq").values_list("speaker", "text"))
    assert stored == log.transcript()
    # The goodbye was heard before the hangup.
    assert log.playing_at_end is False and record.state == "ended"
    assert log.violations == []
    # The session the call was accepted with is the clinic's (prompt, tools), no audio format named.
    (accepted,) = fake_openai.requests_to(f"/realtime/calls/{record.call_id}/accept")
    assert accepted.body["type"] == "realtime" and "format" not in accepted.body["audio"]["input"]
    assert {t["name"] for t in accepted.body["tools"]} >= {"complete_intake", "end_call", "escalate_call"}


def test_a_redelivered_incoming_call_is_accepted_once(sip, clinic, fake_openai):
    call, record, _log, codes = sip("routine_booking", again=True)
    assert codes == ["accepted", "duplicate"]
    assert len(fake_openai.requests_to(f"/realtime/calls/{record.call_id}/accept")) == 1
    assert Call.objects.count() == 1 and call is not None and call.is_ended


def test_a_call_to_an_unknown_number_is_rejected_and_leaves_no_call(sip, clinic):
    call, record, log, codes = sip("routine_booking", to="+14155550100")
    assert codes == ["rejected"] and call is None and log is None
    assert record.state == "rejected" and record.reject_status == 603
    assert not Call.objects.exists()


# The caller stays on the line while being transferred (the shipped request_human caller says thanks and hangs up
# within milliseconds at the test's time scale, before any transfer could start).
def person_please(hangup_after: float):
    return scenario_from_dict(
        {
            "name": "person_please",
            "greeting": GREETING,
            "turns": [
                {"caller": "I have a question about a bill I got last month.", "agent": "May I have your name?"},
                {
                    "caller": "Actually, can I just talk to a real person, please?",
                    "agent": "Of course. Let me get someone from the team for you.",
                },
            ],
            "hangup_after": hangup_after,  # x 0.02 real seconds
        }
    )


HUMAN = person_please(1500.0)  # a transfer that works ends the call at once
HUMAN_SHORT = person_please(250.0)


def test_a_request_for_a_person_during_hours_is_transferred_with_refer_after_the_agents_line(sip, clinic, fake_openai):
    call, record, log, _codes = sip(HUMAN)
    assert call is not None and call.end_reason == Call.EndReason.TRANSFERRED
    assert record.refer_targets == [f"tel:{STAFF_PHONE}"]
    assert call.metadata["sip"]["transfer"] == {"leg": "escalation", "outcome": "referred"}
    assert call.escalations.filter(level=Escalation.Level.HUMAN).exists()
    # The agent said its line before the transfer: the refer came after the escalation turn's response was done.
    assert len(fake_openai.requests_to(f"/realtime/calls/{record.call_id}/refer")) == 1
    assert log is not None and any("Let me get someone from the team" in line for line in agent_lines(call))


def test_a_failed_refer_keeps_the_caller_with_the_agent(sip, clinic, fake_openai):
    fake_openai.fake.refer_failure_status = 500
    call, record, log, _codes = sip(HUMAN_SHORT)
    assert call is not None and call.end_reason != Call.EndReason.TRANSFERRED
    assert call.metadata["sip"]["transfer"] == {"leg": "escalation", "outcome": "failed"}
    assert record.refer_targets == []
    # The model was told, and asked to respond.
    notes = [
        e for e in log.received if e.get("type") == "conversation.item.create" and "did not go through" in json.dumps(e)
    ]
    assert notes


def test_an_emergency_is_steered_to_911_and_never_transferred(sip, clinic, fake_openai):
    call, record, log, _codes = sip("chest_pain_emergency")
    assert call is not None and call.escalation_level == "emergency"
    assert record.refer_targets == []
    assert not fake_openai.requests_to(f"/realtime/calls/{record.call_id}/refer")
    assert "911" in json.dumps([e for e in log.received if e.get("type") == "response.create"])


KEYPAD = scenario_from_dict(
    {
        "name": "keypad_zero",
        "turns": [
            {"caller": "Hi, I'd like to book a routine check-up, please.", "agent": "Sure, what is your name?"},
            {"dtmf": "0", "agent": "Let me get a staff member for you."},
        ],
        "hangup_after": 1500.0,
    }
)


def test_keypad_zero_is_a_request_for_a_person_and_transfers(sip, clinic):
    call, record, _log, _codes = sip(KEYPAD)
    assert call is not None
    escalation = call.escalations.get()
    assert escalation.level == Escalation.Level.HUMAN and escalation.reason == "keypad_0"
    assert record.refer_targets == [f"tel:{STAFF_PHONE}"] and call.end_reason == Call.EndReason.TRANSFERRED


def test_after_hours_a_forwarding_clinic_says_its_line_then_refers_to_on_call(sip, org_a):
    org_a.after_hours_policy = "forward_on_call"
    org_a.on_call_phone = "+14155550133"
    org_a.save()
    add_number(org_a, CLINIC_NUMBER)  # no hours: closed
    call, record, _log, _codes = sip("routine_booking")
    assert call is not None and call.metadata["sip"]["mode"] == "forward_on_call"
    assert record.refer_targets == ["tel:+14155550133"] and call.end_reason == Call.EndReason.TRANSFERRED


def test_a_sip_sideband_that_cannot_attach_ends_the_call_failed_with_the_reason(fake_openai, org_a):
    call = make_call(org_a, minutes_ago=0, channel=Call.Channel.PHONE)
    greeting = {"type": "response.create"}
    ended = async_to_sync(run_sideband)(
        str(call.pk), "rtc_doesnotexist", sip=SipCall(openai_call_id="rtc_doesnotexist", greeting=greeting)
    )
    assert ended.status == Call.Status.FAILED and ended.end_reason == Call.EndReason.ERROR
    assert ended.metadata["sip"]["failure"] == "sideband_failed"
