"""Console tenancy for clinics and memberships: another clinic's config and people stay invisible."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from conftest import logged_in, make_user
from organizations.models import Membership
from organizations.services import ADMIN_GROUP, STAFF_GROUP

pytestmark = pytest.mark.django_db


def autocomplete(client, app_label: str, model_name: str, field_name: str, term: str = ""):
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term},
    )


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_other_clinics_config_page_is_not_found(request, persona, org_a, org_b):
    client = logged_in(request.getfixturevalue(persona))

    for view in ("change", "history", "delete"):
        response = client.get(reverse(f"admin:organizations_organization_{view}", args=[org_a.pk]))
        assert response.status_code == 404, view
        assert org_a.name not in response.content.decode()
        assert org_a.publishable_key not in response.content.decode()
    button = reverse("admin:organizations_organization_button", args=[org_a.pk, "regenerate-key"])
    assert client.post(button).status_code == 404


def test_other_clinics_config_cannot_be_changed_by_post(org_a, org_b, admin_b):
    response = logged_in(admin_b).post(
        reverse("admin:organizations_organization_change", args=[org_a.pk]), {"name": "Hijacked"}
    )

    assert response.status_code == 404
    org_a.refresh_from_db()
    assert org_a.name == "Clinic A"


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_clinic_list_and_autocomplete_show_only_own_clinics(request, persona, org_a, org_b):
    client = logged_in(request.getfixturevalue(persona))

    listing = client.get(reverse("admin:organizations_organization_changelist"))
    search = client.get(reverse("admin:organizations_organization_changelist"), {"q": "clinic"})
    suggestions = autocomplete(client, "calls", "call", "organization", term="clinic")

    assert [org.pk for org in listing.context["cl"].result_list] == [org_b.pk]
    assert [org.pk for org in search.context["cl"].result_list] == [org_b.pk]
    assert suggestions.status_code == 200
    assert [row["id"] for row in suggestions.json()["results"]] == [str(org_b.pk)]


def test_regenerate_action_cannot_touch_another_clinic(org_a, org_b, admin_b):
    key = org_a.publishable_key

    logged_in(admin_b).post(
        reverse("admin:organizations_organization_changelist"),
        {"action": "regenerate_publishable_keys", "_selected_action": [str(org_a.pk)]},
    )

    org_a.refresh_from_db()
    assert org_a.publishable_key == key


def test_operator_sees_every_clinic(org_a, org_b, operator):
    listing = logged_in(operator).get(reverse("admin:organizations_organization_changelist"))

    assert {org.pk for org in listing.context["cl"].result_list} == {org_a.pk, org_b.pk}


def test_clinic_admin_lists_only_own_clinics_memberships(org_a, org_b, admin_a, staff_a, admin_b, staff_b):
    client = logged_in(admin_a)
    own = Membership.objects.get(user=staff_a)
    other = Membership.objects.get(user=staff_b)

    listing = client.get(reverse("admin:organizations_membership_changelist"))
    own_page = client.get(reverse("admin:organizations_membership_change", args=[own.pk]))
    other_page = client.get(reverse("admin:organizations_membership_change", args=[other.pk]))

    assert listing.status_code == 200
    assert {m.user.username for m in listing.context["cl"].result_list} == {"alice", "sam"}
    assert own_page.status_code == 200
    assert 'name="role"' not in own_page.content.decode()  # read-only for clinic admins
    assert other_page.status_code == 404
    assert "betty" not in other_page.content.decode()


def test_staff_member_cannot_list_memberships(org_a, staff_a):
    response = logged_in(staff_a).get(reverse("admin:organizations_membership_changelist"))

    assert response.status_code == 403


def test_clinic_admin_cannot_add_or_change_memberships(org_a, admin_a, staff_a):
    client = logged_in(admin_a)
    membership = Membership.objects.get(user=staff_a)

    add = client.get(reverse("admin:organizations_membership_add"))
    change = client.post(reverse("admin:organizations_membership_change", args=[membership.pk]), {"role": "admin"})

    assert add.status_code == 403
    assert change.status_code == 403
    membership.refresh_from_db()
    assert membership.role == Membership.Role.STAFF


def test_operator_adding_a_membership_grants_console_access(org_a, operator):
    newcomer = make_user("nina")
    client = logged_in(operator)
    assert client.get(reverse("admin:organizations_membership_add")).status_code == 200

    response = client.post(
        reverse("admin:organizations_membership_add"),
        {"user": newcomer.pk, "organization": org_a.pk, "role": Membership.Role.STAFF},
    )

    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.is_staff
    assert list(newcomer.groups.values_list("name", flat=True)) == [STAFF_GROUP]


def test_operator_promoting_a_member_switches_their_group(org_a, staff_a, operator):
    membership = Membership.objects.get(user=staff_a)

    response = logged_in(operator).post(
        reverse("admin:organizations_membership_change", args=[membership.pk]), {"role": Membership.Role.ADMIN}
    )

    assert response.status_code == 302
    staff_a.refresh_from_db()
    assert list(staff_a.groups.values_list("name", flat=True)) == [ADMIN_GROUP]


def test_operator_removing_the_last_membership_revokes_console_access(org_a, staff_a, operator):
    membership = Membership.objects.get(user=staff_a)

    response = logged_in(operator).post(
        reverse("admin:organizations_membership_delete", args=[membership.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    staff_a.refresh_from_db()
    assert not staff_a.is_staff
    assert not staff_a.groups.filter(name__in=[ADMIN_GROUP, STAFF_GROUP]).exists()
    assert Group.objects.filter(name=STAFF_GROUP).exists()


def test_operator_bulk_delete_of_memberships_revokes_console_access(org_a, staff_a, admin_a, operator):
    ids = [str(pk) for pk in Membership.objects.values_list("pk", flat=True)]

    response = logged_in(operator).post(
        reverse("admin:organizations_membership_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )

    assert response.status_code == 302
    # The clinic keeps its last admin (organizations.services.team_member_remove); everyone else is gone.
    assert list(Membership.objects.values_list("user__username", flat=True)) == [admin_a.username]
    staff_a.refresh_from_db()
    admin_a.refresh_from_db()
    assert not staff_a.is_staff
    assert admin_a.is_staff
