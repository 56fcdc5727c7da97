"""Every console page a clinic admin can reach renders, on a clinic with real data in it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calls.models import Escalation
from calls.services import call_end, escalation_create, transcript_segment_append
from conftest import logged_in, make_call
from organizations.models import BusinessHours, Closure, EscalationPhrase, Membership, TwilioNumber

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_clinic(org_a, admin_a, staff_a):
    BusinessHours.objects.create(organization=org_a, weekday=0, opens="08:00", closes="17:00")
    Closure.objects.create(organization=org_a, date="2026-12-25", label="Christmas Day")
    EscalationPhrase.objects.create(organization=org_a, level="urgent", phrase="high fever")
    TwilioNumber.objects.create(organization=org_a, number="+14155550111", label="Main line")
    call = make_call(org_a, caller_phone="+14155550123")
    transcript_segment_append(call=call, speaker="caller", text="My son has a high fever.")
    escalation, _ = escalation_create(call=call, level=Escalation.Level.URGENT, source=Escalation.Source.KEYWORD)
    call_end(call=call, intake={"patient_name": "Ethan Carter", "urgency": "urgent"})
    return {"call": call, "escalation": escalation, "membership": Membership.objects.get(user=staff_a)}


def clinic_admin_pages(org, data) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:app_list", args=["organizations"]),
        reverse("admin:app_list", args=["calls"]),
        reverse("admin:organizations_organization_changelist"),
        reverse("admin:organizations_organization_change", args=[org.pk]),
        reverse("admin:organizations_organization_history", args=[org.pk]),
        reverse("admin:organizations_organization_button", args=[org.pk, "regenerate-key"]),
        reverse("admin:organizations_membership_changelist"),
        reverse("admin:organizations_membership_change", args=[data["membership"].pk]),
        reverse("admin:calls_call_changelist"),
        reverse("admin:calls_call_changelist") + "?q=fever",
        reverse("admin:calls_call_change", args=[data["call"].pk]),
        reverse("admin:calls_call_button", args=[data["call"].pk, "mark-reviewed"]),
        reverse("admin:calls_escalation_changelist"),
        reverse("admin:calls_escalation_change", args=[data["escalation"].pk]),
        reverse("admin:calls_escalation_button", args=[data["escalation"].pk, "acknowledge"]),
        reverse("admin:calls_escalation_button", args=[data["escalation"].pk, "resolve"]),
        reverse("admin:calls_escalation_add"),
    ]


def test_every_console_page_renders_for_a_clinic_admin(org_a, admin_a, busy_clinic):
    client = logged_in(admin_a)

    for url in clinic_admin_pages(org_a, busy_clinic):
        response = client.get(url)
        assert response.status_code == 200, url


def test_every_console_page_renders_for_an_operator(org_a, operator, busy_clinic):
    client = logged_in(operator)
    pages = [
        *clinic_admin_pages(org_a, busy_clinic),
        reverse("admin:organizations_organization_add"),
        reverse("admin:organizations_membership_add"),
    ]

    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url


def test_clinic_staff_see_the_console_sections_they_work_in(org_a, staff_a, busy_clinic):
    html = logged_in(staff_a).get(reverse("admin:index")).content.decode()

    assert reverse("admin:calls_call_changelist") in html
    assert reverse("admin:calls_escalation_changelist") in html
    assert reverse("admin:organizations_organization_changelist") in html
    assert reverse("admin:organizations_membership_changelist") not in html
    assert reverse("admin:auth_user_changelist") not in html
