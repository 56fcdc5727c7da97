"""The conversation service: one caller utterance in, one plain decision out (stored, escalated, steered,
transferred), whatever transport carried it."""

import datetime as dt

import pytest

from calls.conversation import (
    EMERGENCY_STEERING,
    SELF_HARM_STEERING,
    agent_escalation_raise,
    agent_utterance_handle,
    caller_utterance_handle,
)
from calls.models import Call, Escalation, TranscriptSegment
from conftest import make_call
from organizations.models import BusinessHours


def open_all_week(org):
    BusinessHours.objects.filter(organization=org).delete()
    for weekday in range(7):  # 00:00 -> 00:00 is a 24-hour interval
        BusinessHours.objects.create(organization=org, weekday=weekday, opens=dt.time(0), closes=dt.time(0))


def closed_all_week(org):
    BusinessHours.objects.filter(organization=org).delete()


def speakers(call):
    return list(call.segments.order_by("seq").values_list("speaker", flat=True))


@pytest.fixture
def web_call(org_a):
    return make_call(org_a)


@pytest.fixture
def phone_call(org_a):
    return make_call(org_a, channel=Call.Channel.PHONE)


@pytest.mark.django_db
class TestCallerUtterances:
    def test_a_routine_utterance_is_stored_and_nothing_else_happens(self, web_call):
        decision = caller_utterance_handle(call=web_call, text="I'd like to book a checkup next week.", item_id="i1")
        assert decision.stored and decision.escalation is None
        assert not (decision.steering or decision.system_note or decision.transfer_to)
        assert speakers(web_call) == [TranscriptSegment.Speaker.CALLER]
        assert not Escalation.objects.filter(call=web_call).exists()

    def test_an_emergency_raises_one_escalation_writes_the_system_note_and_steers_to_911(self, web_call):
        decision = caller_utterance_handle(call=web_call, text="My dad has crushing chest pain right now", item_id="i1")
        assert decision.escalation is not None
        assert decision.created and decision.escalation.level == Escalation.Level.EMERGENCY
        assert decision.escalation.source == Escalation.Source.KEYWORD
        assert decision.steering == EMERGENCY_STEERING and "911" in decision.steering
        assert decision.transfer_to == ""  # an emergency never waits on a transfer
        web_call.refresh_from_db()
        assert web_call.escalated and web_call.escalation_level == Escalation.Level.EMERGENCY
        assert speakers(web_call) == [TranscriptSegment.Speaker.CALLER, TranscriptSegment.Speaker.SYSTEM]

    def test_a_redelivered_transcript_is_neither_stored_nor_triaged_twice(self, web_call):
        caller_utterance_handle(call=web_call, text="he is not breathing", item_id="i1")
        again = caller_utterance_handle(call=web_call, text="he is not breathing", item_id="i1")
        assert not again.stored and again.escalation is None and not again.steering
        assert web_call.segments.count() == 2  # the caller's line and one system note
        assert Escalation.objects.filter(call=web_call).count() == 1

    def test_a_second_emergency_joins_the_first_without_steering_again(self, web_call):
        caller_utterance_handle(call=web_call, text="she collapsed and is not breathing", item_id="i1")
        second = caller_utterance_handle(call=web_call, text="she's turning blue and not breathing", item_id="i2")
        assert second.stored and not second.created and not second.steering
        assert Escalation.objects.filter(call=web_call, level=Escalation.Level.EMERGENCY).count() == 1

    def test_self_harm_is_steered_to_988(self, web_call):
        decision = caller_utterance_handle(call=web_call, text="I want to kill myself tonight", item_id="i1")
        assert decision.steering == SELF_HARM_STEERING and "988" in decision.steering

    def test_steer_false_still_escalates_but_does_not_interrupt_the_agent(self, web_call):
        decision = caller_utterance_handle(call=web_call, text="my husband is having a seizure", steer=False)
        assert decision.created and decision.steering == ""

    def test_an_urgent_web_call_gets_the_clinic_policy_note_and_no_transfer(self, web_call):
        open_all_week(web_call.organization)
        decision = caller_utterance_handle(call=web_call, text="My son has had a fever of 102 for three days")
        assert decision.escalation is not None
        assert decision.escalation.level == Escalation.Level.URGENT
        assert decision.system_note.startswith("Clinic system note:") and not decision.steering
        assert decision.transfer_to == ""  # only a phone call can be transferred

    def test_a_human_request_on_the_phone_during_hours_is_transferred_to_the_escalation_phone(self, phone_call):
        open_all_week(phone_call.organization)
        decision = caller_utterance_handle(call=phone_call, text="Can I please speak to a real person?")
        assert decision.escalation is not None
        assert decision.escalation.level == Escalation.Level.HUMAN
        assert decision.transfer_to == phone_call.organization.escalation_phone

    def test_no_transfer_when_the_clinic_is_closed(self, phone_call):
        closed_all_week(phone_call.organization)
        decision = caller_utterance_handle(call=phone_call, text="Can I please speak to a real person?")
        assert decision.created and decision.transfer_to == ""
        assert "closed" in decision.system_note

    def test_no_transfer_once_the_call_is_an_emergency(self, phone_call):
        open_all_week(phone_call.organization)
        caller_utterance_handle(call=phone_call, text="he is not breathing", item_id="i1")
        decision = caller_utterance_handle(call=phone_call, text="I need to talk to a person", item_id="i2")
        assert decision.escalation is not None and decision.escalation.level == Escalation.Level.EMERGENCY
        assert decision.transfer_to == ""

    def test_blank_text_stores_nothing(self, web_call):
        assert not caller_utterance_handle(call=web_call, text="   ").stored
        assert web_call.segments.count() == 0


@pytest.mark.django_db
class TestAgentSide:
    def test_a_hedging_agent_raises_one_uncertain_escalation(self, web_call):
        decision = agent_utterance_handle(call=web_call, text="I'm not sure I can help with that.", item_id="a1")
        assert decision.escalation is not None
        assert decision.created and decision.escalation.level == Escalation.Level.UNCERTAIN

    def test_hedges_after_the_first_flagged_one_are_only_stored(self, web_call):
        decision = agent_utterance_handle(call=web_call, text="I'm not sure about that.", flag_uncertain=False)
        assert decision.stored and decision.escalation is None
        assert not Escalation.objects.filter(call=web_call).exists()

    def test_the_models_escalate_call_joins_the_keyword_escalation_and_returns_guidance(self, web_call):
        first = caller_utterance_handle(call=web_call, text="she collapsed and is not breathing")
        decision, guidance = agent_escalation_raise(call=web_call, level="emergency", reason="collapsed")
        assert decision.escalation == first.escalation and not decision.created
        assert "911" in guidance

    def test_the_models_human_escalation_on_an_open_clinics_phone_call_is_transferred(self, phone_call):
        open_all_week(phone_call.organization)
        decision, guidance = agent_escalation_raise(call=phone_call, level="human", reason="asked for a person")
        assert decision.escalation is not None
        assert decision.created and decision.escalation.source == Escalation.Source.AGENT_TOOL
        assert decision.transfer_to == phone_call.organization.escalation_phone
        assert "staff member" in guidance


@pytest.mark.django_db
def test_a_lower_level_trigger_after_an_emergency_joins_the_emergency(web_call):
    first = caller_utterance_handle(call=web_call, text="she collapsed and is not breathing", item_id="i1")
    later = caller_utterance_handle(call=web_call, text="can I talk to a real person please", item_id="i2")
    assert later.escalation == first.escalation and not later.created
    assert Escalation.objects.filter(call=web_call).count() == 1
