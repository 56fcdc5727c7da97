"""What the console shows is what is true: numbers, urgency, review state, History and the audit trail in words."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from calls.models import AuditEvent, Escalation
from calls.services import call_deescalate, call_mark_reviewed, escalation_create, intake_store
from conftest import logged_in, make_call, token_for
from organizations.models import TwilioNumber

pytestmark = pytest.mark.django_db


@pytest.fixture
def emergency_call(org_a):
    call = make_call(org_a, caller_name="Robert Chen", caller_phone="+14155550123")
    escalation_create(call=call, level=Escalation.Level.EMERGENCY, source=Escalation.Source.KEYWORD, reason="chest")
    call.refresh_from_db()
    return call


def test_clinic_users_see_their_phone_numbers_read_only_and_not_other_clinics(org_a, org_b, admin_a, staff_a):
    TwilioNumber.objects.create(organization=org_a, number="+14155550111", label="Front desk")
    TwilioNumber.objects.create(organization=org_b, number="+14155550222", label="B line")

    for user in (admin_a, staff_a):
        html = logged_in(user).get(reverse("admin:organizations_organization_change", args=[org_a.pk])).content
        page = html.decode()
        assert "+14155550111" in page
        assert "Front desk" in page
        assert "+14155550222" not in page
        assert 'name="twilio_numbers-0-number"' not in page  # shown, not editable


def test_a_calls_urgency_follows_its_highest_escalation_in_the_list_its_filter_and_the_api(emergency_call, staff_a):
    org_a = emergency_call.organization
    routine = make_call(org_a, caller_name="Ana Diaz")
    intake_store(call=routine, data={"urgency": "routine"})
    client = logged_in(staff_a)
    api = Client(headers={"Authorization": f"Token {token_for(staff_a)}"})

    listing = client.get(reverse("admin:calls_call_changelist")).content.decode()
    filtered = client.get(reverse("admin:calls_call_changelist"), {"urgency__exact": "emergency"}).content.decode()
    page = client.get(reverse("admin:calls_call_change", args=[emergency_call.pk])).content.decode()
    found = api.get("/api/calls", {"organization": str(org_a.pk), "urgency": "emergency"}).json()["results"]

    # No intake said anything, but an Emergency escalation makes it an emergency call everywhere staff look.
    assert '<td class="field-urgency_label">Emergency</td>' in listing
    assert "Robert Chen" in filtered and "Ana Diaz" not in filtered
    assert "Emergency" in page.split("Urgency", 1)[1][:300]
    assert [(call["id"], call["urgency"]) for call in found] == [(str(emergency_call.pk), "emergency")]


def test_an_intake_never_lowers_an_escalated_calls_urgency_and_deescalating_returns_it_to_the_intakes(
    emergency_call, staff_a
):
    intake_store(call=emergency_call, data={"urgency": "routine"})
    emergency_call.refresh_from_db()
    assert (emergency_call.urgency, emergency_call.intake.urgency) == ("emergency", "routine")

    call_deescalate(call=emergency_call, user=staff_a, note="Heartburn; spoke to her.")
    emergency_call.refresh_from_db()
    assert (emergency_call.escalation_level, emergency_call.urgency) == ("", "routine")

    escalation_create(call=emergency_call, level=Escalation.Level.URGENT, source=Escalation.Source.KEYWORD)
    emergency_call.refresh_from_db()
    assert emergency_call.urgency == "urgent"


def test_review_state_reads_as_words_not_a_red_cross(org_a, staff_a):
    call_a = make_call(org_a)
    client = logged_in(staff_a)

    before = client.get(reverse("admin:calls_call_changelist")).content.decode()
    call_mark_reviewed(call=call_a, user=staff_a)
    after = client.get(reverse("admin:calls_call_changelist")).content.decode()

    assert "icon-no" not in before
    assert '<td class="field-reviewed">Not yet</td>' in before
    assert '<td class="field-reviewed">Reviewed</td>' in after


def test_a_calls_history_page_tells_what_happened_in_words(emergency_call, admin_a, staff_a):
    admin_a.first_name, admin_a.last_name = "Rita", "Moreno"
    admin_a.save()
    admin = logged_in(admin_a)
    admin.get(reverse("admin:calls_call_change", args=[emergency_call.pk]))  # a read, recorded
    url = reverse("admin:calls_call_history", args=[emergency_call.pk])

    page = admin.get(url).content.decode()
    staff_page = logged_in(staff_a).get(url).content.decode()

    text = re.sub(r"<[^>]+>", "", page)
    assert "Rita Moreno viewed the call of Robert Chen." in text
    assert "The system created the Emergency escalation on the call of Robert Chen." in text
    assert f'href="{reverse("admin:calls_call_change", args=[emergency_call.pk])}"' in page
    # Staff see the changes, not who looked at the call.
    staff_text = re.sub(r"<[^>]+>", "", staff_page)
    assert "viewed the call" not in staff_text
    assert "The system created the Emergency escalation on the call of Robert Chen." in staff_text


def test_another_clinics_call_history_is_absent(emergency_call, admin_b):
    response = logged_in(admin_b).get(reverse("admin:calls_call_history", args=[emergency_call.pk]))

    assert response.status_code == 404


def test_audit_trail_reads_in_names_and_actions_with_the_ids_a_click_away(emergency_call, admin_a):
    admin_a.first_name, admin_a.last_name = "Rita", "Moreno"
    admin_a.save()
    client = logged_in(admin_a)
    client.get(reverse("admin:calls_call_change", args=[emergency_call.pk]))

    page = client.get(reverse("admin:calls_auditevent_changelist")).content.decode()

    call_url = reverse("admin:calls_call_change", args=[emergency_call.pk])
    assert f'Rita Moreno viewed the call of <a href="{call_url}">Robert Chen</a>.' in page
    viewed = AuditEvent.objects.filter(action="view", object_id=str(emergency_call.pk)).latest("id")
    assert reverse("admin:calls_auditevent_change", args=[viewed.pk]) in page
    raw = client.get(reverse("admin:calls_auditevent_change", args=[viewed.pk])).content.decode()
    assert str(emergency_call.pk) in raw
    # Naming callers on the trail is itself a recorded read.
    assert AuditEvent.objects.filter(action="list", object_type="call", actor_user_id=admin_a.pk).exists()


def test_audit_trail_never_names_another_clinics_caller(emergency_call, admin_b):
    # B's admin sees only B's rows; A's caller never appears on B's trail.
    make_call(emergency_call.organization)
    page = logged_in(admin_b).get(reverse("admin:calls_auditevent_changelist")).content.decode()

    assert "Robert Chen" not in page


def test_view_site_link_is_gone(admin_a):
    page = logged_in(admin_a).get(reverse("admin:index")).content.decode()

    assert "View site" not in page


def test_audit_trail_names_a_page_of_rows_in_a_constant_number_of_queries(org_a, admin_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = logged_in(admin_a)
    url = reverse("admin:calls_auditevent_changelist")

    def queries_for_a_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    make_call(org_a, caller_name="First Caller")
    client.get(url)  # the page's own read rows exist from now on in both measurements
    few = queries_for_a_page()
    for number in range(12):
        call = make_call(org_a, caller_name=f"Caller {number}")
        client.get(reverse("admin:calls_call_change", args=[call.pk]))
    many = queries_for_a_page()

    assert many == few
