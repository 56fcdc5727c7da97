"""Team management: a clinic admin adds, removes, re-roles and resets access for their own clinic's members only;
an operator for any clinic; a clinic always keeps an admin; every change is in the audit trail."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from calls.models import AuditEvent
from conftest import PASSWORD, logged_in
from organizations.models import Membership
from organizations.services import TeamChangeRefused, team_member_remove, team_member_role_set

pytestmark = pytest.mark.django_db

User = get_user_model()


def team_url(org) -> str:
    return reverse("admin:organizations_organization_team", args=[org.pk])


def membership(user, org) -> Membership:
    return Membership.objects.get(user=user, organization=org)


def test_clinic_admin_sees_their_team(org_a, admin_a, staff_a, staff_b):
    response = logged_in(admin_a).get(team_url(org_a))

    assert response.status_code == 200
    assert [m.user.username for m in response.context["members"]] == ["alice", "sam"]
    assert "betty" not in response.content.decode()


def test_another_clinics_team_is_absent_and_staff_are_refused(org_a, org_b, admin_a, staff_a, admin_b):
    assert logged_in(admin_b).get(team_url(org_a)).status_code == 404
    assert logged_in(staff_a).get(team_url(org_a)).status_code == 403
    assert logged_in(admin_a).get(team_url(org_b)).status_code == 404


def test_an_admin_adds_a_member_who_gets_an_invitation_link_that_sets_their_password(org_a, admin_a, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    client = logged_in(admin_a)

    response = client.post(
        team_url(org_a),
        {"operation": "add", "username": "nina", "email": "nina@example.com", "first_name": "Nina", "role": "staff"},
    )

    assert response.status_code == 200
    nina = User.objects.get(username="nina")
    assert membership(nina, org_a).role == Membership.Role.STAFF
    assert nina.is_staff and not nina.has_usable_password()
    url = response.context["access"][1].url
    assert url.startswith("http://testserver/account/set-password/")
    path = url.removeprefix("http://testserver")
    invited = Client()
    form_page = invited.get(path, follow=True)
    assert form_page.status_code == 200
    done = invited.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-long-new-passphrase-9", "new_password2": "a-long-new-passphrase-9"},
    )
    assert done.status_code == 302
    assert invited.login(username="nina", password="a-long-new-passphrase-9")
    # The link works once.
    again = Client().get(path, follow=True)
    assert "invalid" in again.content.decode().lower()
    row = AuditEvent.objects.get(object_type="membership", action="create")
    assert row.actor_user_id == admin_a.pk
    assert row.organization_id == org_a.pk
    assert row.details == {"user_id": nina.pk}
    assert AuditEvent.objects.filter(object_type="user", object_id=str(nina.pk), action="change").exists()


def test_a_clinic_admin_cannot_take_over_an_existing_username(org_a, admin_a, staff_b):
    response = logged_in(admin_a).post(
        team_url(org_a), {"operation": "add", "username": "betty", "email": "", "role": "admin"}
    )

    assert response.status_code == 200
    assert "That username is taken" in response.content.decode()
    assert not Membership.objects.filter(user=staff_b, organization=org_a).exists()


def test_an_admin_changes_a_role_and_it_is_audited(org_a, admin_a, staff_a):
    response = logged_in(admin_a).post(
        team_url(org_a), {"operation": "role", "membership": membership(staff_a, org_a).pk, "role": "admin"}
    )

    assert response.status_code == 302
    assert membership(staff_a, org_a).role == Membership.Role.ADMIN
    staff_a.refresh_from_db()
    assert staff_a.groups.filter(name="Clinic admins").exists()
    row = AuditEvent.objects.get(object_type="membership", action="change")
    assert row.details == {"user_id": staff_a.pk, "fields": ["role"]}


def test_the_last_admin_can_be_neither_demoted_nor_removed(org_a, admin_a, staff_a):
    client = logged_in(admin_a)
    own = membership(admin_a, org_a)

    demoted = client.post(team_url(org_a), {"operation": "role", "membership": own.pk, "role": "staff"}, follow=True)
    removed = client.post(team_url(org_a), {"operation": "remove", "membership": own.pk}, follow=True)

    assert "at least one clinic admin" in demoted.content.decode()
    assert "at least one clinic admin" in removed.content.decode()
    assert membership(admin_a, org_a).role == Membership.Role.ADMIN
    with pytest.raises(TeamChangeRefused) as refused:
        team_member_remove(actor=admin_a, organization=org_a, membership_id=own.pk)
    assert refused.value.code == "last_admin"
    assert not AuditEvent.objects.filter(object_type="membership").exists()


def test_with_a_second_admin_the_first_may_step_down(org_a, admin_a, staff_a):
    team_member_role_set(actor=admin_a, organization=org_a, membership_id=membership(staff_a, org_a).pk, role="admin")

    team_member_role_set(actor=admin_a, organization=org_a, membership_id=membership(admin_a, org_a).pk, role="staff")

    assert membership(admin_a, org_a).role == Membership.Role.STAFF


def test_an_admin_removes_a_member_who_loses_the_console(org_a, admin_a, staff_a):
    response = logged_in(admin_a).post(
        team_url(org_a), {"operation": "remove", "membership": membership(staff_a, org_a).pk}
    )

    assert response.status_code == 302
    assert not Membership.objects.filter(user=staff_a).exists()
    staff_a.refresh_from_db()
    assert not staff_a.is_staff
    assert Client().login(username="sam", password=PASSWORD)  # the account stays; the console is closed
    assert logged_in(staff_a).get(reverse("admin:index")).status_code == 302
    assert AuditEvent.objects.filter(object_type="membership", action="delete", actor_user_id=admin_a.pk).exists()


@pytest.mark.parametrize("operation", ["role", "remove", "reset"])
def test_an_admin_cannot_touch_another_clinics_members(org_a, org_b, admin_a, staff_b, operation):
    other = membership(staff_b, org_b)

    # Through their own clinic's page (B's membership id is not on A's team) and through B's page.
    own_page = logged_in(admin_a).post(
        team_url(org_a), {"operation": operation, "membership": other.pk, "role": "admin"}
    )
    b_page = logged_in(admin_a).post(team_url(org_b), {"operation": operation, "membership": other.pk, "role": "admin"})

    assert own_page.status_code == 404
    assert b_page.status_code == 404
    assert membership(staff_b, org_b).role == Membership.Role.STAFF
    assert not AuditEvent.objects.filter(object_type__in=["membership", "user"]).exists()


def test_staff_cannot_manage_the_team_even_by_posting(org_a, admin_a, staff_a):
    response = logged_in(staff_a).post(
        team_url(org_a), {"operation": "role", "membership": membership(staff_a, org_a).pk, "role": "admin"}
    )

    assert response.status_code == 403
    assert membership(staff_a, org_a).role == Membership.Role.STAFF


def test_reset_access_shows_the_link_once_and_can_email_it(
    org_a, admin_a, staff_a, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_BASE_URL = "http://clinic.example"
    client = logged_in(admin_a)

    with django_capture_on_commit_callbacks(execute=True):  # the e-mail goes out after commit
        response = client.post(
            team_url(org_a), {"operation": "reset", "membership": membership(staff_a, org_a).pk, "send_email": "1"}
        )

    assert response.status_code == 200
    link = response.context["access"][1]
    assert link.url in response.content.decode()
    assert link.emailed_to == "sam@example.com"
    assert len(mail.outbox) == 1 and link.url in mail.outbox[0].body
    assert link.url not in client.get(team_url(org_a)).content.decode()  # shown once
    row = AuditEvent.objects.get(object_type="user", object_id=str(staff_a.pk))
    assert row.details == {"event": "access_reset", "emailed": True}
    assert re.search(r"/account/set-password/[^/]+/[^/]+/$", link.url)


def test_a_clinic_admin_cannot_reset_someone_who_also_belongs_to_another_clinic(org_a, org_b, admin_a, staff_b):
    Membership.objects.create(user=staff_b, organization=org_a, role=Membership.Role.STAFF)

    response = logged_in(admin_a).post(
        team_url(org_a), {"operation": "reset", "membership": membership(staff_b, org_a).pk}, follow=True
    )

    assert "ask an operator" in response.content.decode()
    assert response.context.get("access") is None


def test_an_operator_manages_any_clinics_team_including_existing_users(org_a, org_b, operator, staff_b):
    client = logged_in(operator)

    added = client.post(team_url(org_a), {"operation": "add", "username": "betty", "email": "", "role": "staff"})
    reset = client.post(team_url(org_a), {"operation": "reset", "membership": membership(staff_b, org_a).pk})

    assert added.status_code == 200 and reset.status_code == 200
    assert membership(staff_b, org_a).role == Membership.Role.STAFF
    assert reset.context["access"][1].url
    assert AuditEvent.objects.filter(object_type="membership", actor_user_id=operator.pk).count() == 1


def test_team_changes_read_in_words_on_the_audit_trail(org_a, admin_a, staff_a):
    admin_a.first_name, admin_a.last_name = "Rita", "Alvarez"
    admin_a.save()
    staff_a.first_name, staff_a.last_name = "Sam", "Okafor"
    staff_a.save()
    team_member_role_set(actor=admin_a, organization=org_a, membership_id=membership(staff_a, org_a).pk, role="admin")

    page = logged_in(admin_a).get(reverse("admin:calls_auditevent_changelist")).content.decode()

    assert "Rita Alvarez changed the role in the team membership of Sam Okafor." in page


def test_the_membership_list_links_each_row_to_its_clinics_team(org_a, admin_a, staff_a):
    page = logged_in(admin_a).get(reverse("admin:organizations_membership_changelist")).content.decode()

    assert team_url(org_a) in page
    assert reverse("admin:organizations_membership_add") not in page


def test_a_new_member_needs_a_valid_username(org_a, admin_a):
    response = logged_in(admin_a).post(team_url(org_a), {"operation": "add", "username": "no spaces!", "role": "staff"})

    assert response.status_code == 200
    assert not User.objects.filter(username="no spaces!").exists()
    assert response.context["add_form"].errors


def test_the_clinic_page_links_admins_to_the_team_and_not_staff(org_a, admin_a, staff_a):
    change = reverse("admin:organizations_organization_change", args=[org_a.pk])

    assert team_url(org_a) in logged_in(admin_a).get(change).content.decode()
    assert team_url(org_a) not in logged_in(staff_a).get(change).content.decode()
