"""The escalation queue in the staff console: open first, handled through the services, never across clinics."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Escalation
from calls.services import escalation_acknowledge, escalation_create, escalation_resolve
from conftest import logged_in, make_call

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:calls_escalation_changelist"


def escalate(org, *, level=Escalation.Level.URGENT, caller_phone="+14155550123", age_minutes=0) -> Escalation:
    call = make_call(org, caller_phone=caller_phone, caller_name="Jane Roe")
    escalation, _ = escalation_create(
        call=call, level=level, source=Escalation.Source.KEYWORD, reason="Caller said: chest pain"
    )
    Escalation.objects.filter(pk=escalation.pk).update(created_at=timezone.now() - dt.timedelta(minutes=age_minutes))
    escalation.refresh_from_db()
    return escalation


@pytest.fixture
def escalation_a(org_a) -> Escalation:
    return escalate(org_a)


def test_queue_lists_open_escalations_first_then_newest(org_a, admin_a, staff_a):
    resolved_new = escalate(org_a, age_minutes=1)
    escalation_resolve(escalation=resolved_new, user=admin_a)
    acknowledged = escalate(org_a, age_minutes=2)
    escalation_acknowledge(escalation=acknowledged, user=admin_a)
    open_old = escalate(org_a, age_minutes=30)
    open_new = escalate(org_a, age_minutes=5)

    response = logged_in(staff_a).get(reverse(CHANGELIST), {"state": "all"})

    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [
        open_new.pk,
        open_old.pk,
        acknowledged.pk,
        resolved_new.pk,
    ]


def test_queue_opens_on_open_escalations_and_every_other_state_is_one_click_away(org_a, admin_a, staff_a):
    resolved = escalate(org_a, age_minutes=1)
    escalation_resolve(escalation=resolved, user=admin_a)
    acknowledged = escalate(org_a, age_minutes=2)
    escalation_acknowledge(escalation=acknowledged, user=admin_a)
    still_open = escalate(org_a, age_minutes=3)
    client = logged_in(staff_a)

    def listed(**params) -> list:
        response = client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return [e.pk for e in response.context["cl"].result_list]

    assert listed() == [still_open.pk]
    assert listed(state="unresolved") == [still_open.pk, acknowledged.pk]
    assert listed(state="acknowledged") == [acknowledged.pk]
    assert listed(state="resolved") == [resolved.pk]
    assert listed(state="all") == [still_open.pk, acknowledged.pk, resolved.pk]
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert "Open (default)" in html
    assert "?state=all" in html


def test_queue_filters_by_level_status_and_source(org_a, admin_a):
    emergency = escalate(org_a, level=Escalation.Level.EMERGENCY)
    urgent = escalate(org_a, level=Escalation.Level.URGENT)
    escalation_acknowledge(escalation=urgent, user=admin_a)
    client = logged_in(admin_a)

    def listed(**params) -> list:
        response = client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return [e.pk for e in response.context["cl"].result_list]

    assert listed(level__exact="emergency") == [emergency.pk]
    assert listed(status__exact="acknowledged") == [urgent.pk]
    assert listed(source__exact="keyword", state="all") == [emergency.pk, urgent.pk]
    assert listed(source__exact="staff", state="all") == []
    assert listed(call=str(emergency.call_id)) == [emergency.pk]


def test_escalation_page_renders_read_only_with_a_link_to_its_call(escalation_a, admin_a):
    response = logged_in(admin_a).get(reverse("admin:calls_escalation_change", args=[escalation_a.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("admin:calls_call_change", args=[escalation_a.call_id]) in html
    assert "Caller said: chest pain" in html
    assert 'name="status"' not in html
    assert reverse("admin:calls_escalation_button", args=[escalation_a.pk, "acknowledge"]) in html


@pytest.mark.parametrize(
    ("action", "status", "by_field", "at_field"),
    [
        ("acknowledge", Escalation.Status.ACKNOWLEDGED, "acknowledged_by", "acknowledged_at"),
        ("resolve", Escalation.Status.RESOLVED, "resolved_by", "resolved_at"),
    ],
)
def test_the_acknowledge_and_resolve_actions_record_who_and_when(
    escalation_a, staff_a, action, status, by_field, at_field
):
    response = logged_in(staff_a).post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [str(escalation_a.pk)], "note": "called back"}
    )

    assert response.status_code == 302
    escalation_a.refresh_from_db()
    assert escalation_a.status == status
    assert getattr(escalation_a, by_field) == staff_a
    assert getattr(escalation_a, at_field) is not None
    assert escalation_a.acknowledged_by == staff_a  # resolving an unacknowledged escalation acknowledges it


def test_resolve_button_keeps_the_note(escalation_a, admin_a):
    client = logged_in(admin_a)
    url = reverse("admin:calls_escalation_button", args=[escalation_a.pk, "resolve"])
    assert 'name="note"' in client.get(url).content.decode()

    response = client.post(url, {"note": "Called back; booked for tomorrow 9:00."})

    assert response.status_code == 302
    escalation_a.refresh_from_db()
    assert escalation_a.status == Escalation.Status.RESOLVED
    assert escalation_a.resolved_by == admin_a
    assert escalation_a.resolution_note == "Called back; booked for tomorrow 9:00."


def test_resolving_asks_for_a_note_and_refuses_without_one(escalation_a, staff_a):
    client = logged_in(staff_a)
    url = reverse("admin:calls_escalation_button", args=[escalation_a.pk, "resolve"])
    assert "Note (required)" in client.get(url).content.decode()
    assert client.post(url, {"note": "   "}).status_code == 400

    asked = client.post(reverse(CHANGELIST), {"action": "resolve", "_selected_action": [str(escalation_a.pk)]})
    assert asked.status_code == 200 and "Note (required)" in asked.content.decode()
    refused = client.post(
        reverse(CHANGELIST), {"action": "resolve", "_selected_action": [str(escalation_a.pk)], "note": ""}
    )
    assert refused.status_code == 400

    escalation_a.refresh_from_db()
    assert escalation_a.status == Escalation.Status.OPEN


def test_acknowledging_again_keeps_the_first_acknowledgement(escalation_a, admin_a, staff_a):
    escalation_acknowledge(escalation=escalation_a, user=staff_a)
    escalation_a.refresh_from_db()
    first_at = escalation_a.acknowledged_at

    logged_in(admin_a).post(reverse(CHANGELIST), {"action": "acknowledge", "_selected_action": [str(escalation_a.pk)]})

    escalation_a.refresh_from_db()
    assert escalation_a.acknowledged_by == staff_a
    assert escalation_a.acknowledged_at == first_at


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_actions_cannot_touch_another_clinics_escalation(action, escalation_a, admin_b):
    logged_in(admin_b).post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [str(escalation_a.pk)], "note": "x"}
    )

    escalation_a.refresh_from_db()
    assert escalation_a.status == Escalation.Status.OPEN
    assert escalation_a.acknowledged_by is None


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_other_clinics_escalation_pages_are_not_found(request, persona, escalation_a, org_b):
    client = logged_in(request.getfixturevalue(persona))
    pages = [
        reverse("admin:calls_escalation_change", args=[escalation_a.pk]),
        reverse("admin:calls_escalation_history", args=[escalation_a.pk]),
        reverse("admin:calls_escalation_button", args=[escalation_a.pk, "acknowledge"]),
    ]

    for url in pages:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "+14155550123" not in response.content.decode()
        assert "chest pain" not in response.content.decode()
    assert client.post(pages[2]).status_code == 404
    escalation_a.refresh_from_db()
    assert escalation_a.status == Escalation.Status.OPEN


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_other_clinics_escalations_are_absent_from_the_queue(request, persona, escalation_a, org_b):
    own = escalate(org_b, caller_phone="+12065550100")
    client = logged_in(request.getfixturevalue(persona))

    listing = client.get(reverse(CHANGELIST))
    search = client.get(reverse(CHANGELIST), {"q": "chest pain"})
    by_call = client.get(reverse(CHANGELIST), {"call": str(escalation_a.call_id)})

    assert [e.pk for e in listing.context["cl"].result_list] == [own.pk]
    assert "+14155550123" not in listing.content.decode()
    assert [e.pk for e in search.context["cl"].result_list] == [own.pk]
    assert list(by_call.context["cl"].result_list) == []


def test_staff_flags_a_call_for_follow_up(org_a, staff_a):
    call = make_call(org_a)
    client = logged_in(staff_a)
    add_url = reverse("admin:calls_escalation_add")
    assert client.get(add_url, {"call": str(call.pk)}).status_code == 200

    response = client.post(
        add_url, {"call": str(call.pk), "level": Escalation.Level.HUMAN, "reason": "Wants the nurse", "evidence": ""}
    )

    assert response.status_code == 302
    escalation = Escalation.objects.get(call=call)
    assert escalation.source == Escalation.Source.STAFF
    assert escalation.organization == org_a
    call.refresh_from_db()
    assert call.escalated
    assert call.escalation_level == Escalation.Level.HUMAN


def test_staff_cannot_flag_another_clinics_call(org_a, org_b, staff_b):
    call = make_call(org_a)

    response = logged_in(staff_b).post(
        reverse("admin:calls_escalation_add"),
        {"call": str(call.pk), "level": Escalation.Level.HUMAN, "reason": "probe", "evidence": ""},
    )

    assert response.status_code == 200  # the form answers "select a valid choice"
    assert "call" in response.context["adminform"].form.errors
    assert not Escalation.objects.filter(call=call).exists()
    assert not Call.objects.get(pk=call.pk).escalated


def test_nobody_deletes_escalations_in_the_console(escalation_a, admin_a, operator):
    for user in (admin_a, operator):
        response = logged_in(user).post(
            reverse("admin:calls_escalation_delete", args=[escalation_a.pk]), {"post": "yes"}
        )
        assert response.status_code == 403
    assert Escalation.objects.filter(pk=escalation_a.pk).exists()


def test_an_escalation_page_explains_why_triage_escalated(org_a, staff_a):
    from calls.conversation import caller_utterance_handle

    call = make_call(org_a)
    decision = caller_utterance_handle(call=call, text="my husband collapsed and he is not breathing", item_id="i1")
    assert decision.escalation is not None
    page = logged_in(staff_a).get(reverse("admin:calls_escalation_change", args=[decision.escalation.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Why triage escalated" in html and "Decided by" in html
    assert "Learned layer" in html and "emergency" in html
    assert decision.escalation.triage["evidence"]
    assert decision.escalation.triage["evidence"][0] in html  # the caller's words that triggered it
