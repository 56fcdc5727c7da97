"""Clinic configuration in the staff console: clinic admins edit it with readable widgets, staff only read it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from conftest import logged_in
from organizations.models import DEFAULT_INTAKE_FIELDS, BusinessHours, Organization
from organizations.services import membership_set

pytestmark = pytest.mark.django_db


def change_url(org: Organization) -> str:
    return reverse("admin:organizations_organization_change", args=[org.pk])


def _bound_values(form, data: dict) -> None:
    for bound in form:
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif value is not None:
            data[bound.html_name] = value


def change_form_data(response) -> dict:
    """The POST a browser would send back unchanged: main form, plus every inline's management form and rows."""
    data: dict = {}
    _bound_values(response.context["adminform"].form, data)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        initial = formset.initial_form_count()
        _bound_values(formset.management_form, data)
        data[f"{formset.prefix}-TOTAL_FORMS"] = initial
        for form in formset.forms[:initial]:
            _bound_values(form, data)
    return data


def add_hours_rows(data: dict, rows: list[tuple[int, str, str]]) -> None:
    total = int(data["hours-TOTAL_FORMS"])
    for index, (weekday, opens, closes) in enumerate(rows, start=total):
        data[f"hours-{index}-weekday"] = weekday
        data[f"hours-{index}-opens"] = opens
        data[f"hours-{index}-closes"] = closes
    data["hours-TOTAL_FORMS"] = total + len(rows)


def test_clinic_admin_sees_clinic_list_and_config_page(org_a, admin_a):
    client = logged_in(admin_a)
    listing = client.get(reverse("admin:organizations_organization_changelist"))
    page = client.get(change_url(org_a))

    assert listing.status_code == 200
    assert org_a.name in listing.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert org_a.publishable_key in html
    assert 'type="checkbox" name="agent_languages"' in html  # languages are checkboxes, not JSON
    assert "https://clinic-a.example" in html  # allowed origins shown one per line
    assert '"https://clinic-a.example"' not in html  # ... not as a JSON literal


def test_webhook_secret_is_never_shown_in_full(org_a, admin_a):
    client = logged_in(admin_a)
    changelist = reverse("admin:organizations_organization_changelist")
    page = client.get(change_url(org_a)).content.decode()
    listing = client.get(changelist).content.decode()
    search = client.get(changelist, {"q": org_a.webhook_secret})

    assert org_a.webhook_secret not in page
    assert f"whsec_…{org_a.webhook_secret[-4:]}" in page
    assert org_a.webhook_secret not in listing
    assert search.context["cl"].result_count == 0  # not searchable by the secret either


def test_clinic_admin_changes_config_with_inlines(org_a, admin_a):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    data.update(
        {
            "name": "Clinic A Downtown",
            "services": "Flu shots\n\n  Physicals  \n",
            "allowed_origins": "https://clinic-a.example\nhttp://localhost:8000",
            "agent_languages": ["en", "es"],
        }
    )
    add_hours_rows(data, [(0, "08:00", "12:00"), (0, "13:00", "17:00"), (4, "20:00", "02:00")])

    response = client.post(change_url(org_a), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    org_a.refresh_from_db()
    assert org_a.name == "Clinic A Downtown"
    assert org_a.services == ["Flu shots", "Physicals"]
    assert org_a.allowed_origins == ["https://clinic-a.example", "http://localhost:8000"]
    assert org_a.agent_languages == ["en", "es"]
    hours = sorted((h.weekday, h.opens, h.closes) for h in org_a.hours.all())
    assert hours == [
        (0, dt.time(8), dt.time(12)),
        (0, dt.time(13), dt.time(17)),
        (4, dt.time(20), dt.time(2)),
    ]


def test_clinic_admin_edits_intake_field_choices_as_comma_separated_text(org_a, admin_a):
    client = logged_in(admin_a)
    response = client.get(change_url(org_a))
    data = change_form_data(response)
    urgency = org_a.intake_fields.get(name="urgency")
    formset = next(f.formset for f in response.context["inline_admin_formsets"] if f.formset.prefix == "intake_fields")
    index = next(i for i, form in enumerate(formset.forms) if form.instance.pk == urgency.pk)
    assert data[f"intake_fields-{index}-choices"] == "routine, urgent, emergency"
    data[f"intake_fields-{index}-choices"] = "routine, urgent , emergency, same day"

    assert client.post(change_url(org_a), data).status_code == 302

    urgency.refresh_from_db()
    assert urgency.choices == ["routine", "urgent", "emergency", "same day"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            [(0, "08:00", "12:00"), (0, "11:00", "17:00")],
            "Opening hours overlap: Monday 08:00-12:00 and Monday 11:00-17:00.",
            id="same-day",
        ),
        pytest.param(
            [(6, "22:00", "06:00"), (0, "05:00", "12:00")],
            "Opening hours overlap",
            id="sunday-overnight-into-monday-morning",
        ),
    ],
)
def test_overlapping_hours_are_rejected_with_a_readable_error(org_a, admin_a, rows, message):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    add_hours_rows(data, rows)

    response = client.post(change_url(org_a), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BusinessHours.objects.filter(organization=org_a).exists()


def test_bad_origins_and_duplicate_services_show_field_errors(org_a, admin_a):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    data.update({"allowed_origins": "https://ok.example\nhttps://bad.example/path", "services": "X-ray\nX-ray"})

    response = client.post(change_url(org_a), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "https://bad.example/path is not a web origin" in errors["allowed_origins"][0]
    assert errors["services"] == ["Each service may appear only once."]
    org_a.refresh_from_db()
    assert org_a.allowed_origins == ["https://clinic-a.example"]


def test_choosing_no_language_is_rejected(org_a, admin_a):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    data.pop("agent_languages")

    response = client.post(change_url(org_a), data)

    assert response.status_code == 200
    assert "agent_languages" in response.context["adminform"].form.errors


def test_staff_member_sees_config_as_readable_text(org_a, staff_a):
    org_a.services = ["Flu shots", "X-ray"]
    org_a.save()

    html = logged_in(staff_a).get(change_url(org_a)).content.decode()

    assert "Flu shots<br>X-ray" in html
    assert "routine, urgent, emergency" in html  # intake choices
    assert "English" in html
    assert "[&quot;" not in html and '["' not in html  # no JSON anywhere


def test_staff_member_sees_config_read_only_and_cannot_change_it(org_a, admin_a, staff_a):
    data = change_form_data(logged_in(admin_a).get(change_url(org_a)))
    data["name"] = "Renamed by staff"
    add_hours_rows(data, [(0, "08:00", "12:00")])
    staff = logged_in(staff_a)

    page = staff.get(change_url(org_a))
    response = staff.post(change_url(org_a), data)

    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()  # view-only page: no inputs
    assert "Regenerate publishable key" not in page.content.decode()
    assert response.status_code == 403
    org_a.refresh_from_db()
    assert org_a.name == "Clinic A"
    assert not org_a.hours.exists()


def test_clinic_admin_regenerates_the_publishable_key_from_the_change_page(org_a, admin_a):
    client = logged_in(admin_a)
    old_key = org_a.publishable_key
    url = reverse("admin:organizations_organization_button", args=[org_a.pk, "regenerate-key"])
    assert url in client.get(change_url(org_a)).content.decode()

    confirm = client.get(url)
    org_a.refresh_from_db()
    assert confirm.status_code == 200
    assert org_a.publishable_key == old_key  # GET only asks for confirmation

    response = client.post(url)

    assert response.status_code == 302
    org_a.refresh_from_db()
    assert org_a.publishable_key != old_key
    assert org_a.publishable_key.startswith("pk_")


def test_staff_member_cannot_regenerate_the_key(org_a, staff_a):
    old_key = org_a.publishable_key
    url = reverse("admin:organizations_organization_button", args=[org_a.pk, "regenerate-key"])

    response = logged_in(staff_a).post(url)

    assert response.status_code == 403
    org_a.refresh_from_db()
    assert org_a.publishable_key == old_key


def test_regenerate_action_changes_only_clinics_the_user_administers(org_a, org_b, admin_a, staff_b):
    # alice administers A and is only staff in B.
    membership_set(user=admin_a, organization=org_b, role="staff")
    keys = {org.pk: org.publishable_key for org in (org_a, org_b)}

    response = logged_in(admin_a).post(
        reverse("admin:organizations_organization_changelist"),
        {"action": "regenerate_publishable_keys", "_selected_action": [str(org_a.pk), str(org_b.pk)]},
    )

    assert response.status_code == 302
    org_a.refresh_from_db()
    org_b.refresh_from_db()
    assert org_a.publishable_key != keys[org_a.pk]
    assert org_b.publishable_key == keys[org_b.pk]


def test_clinic_admins_cannot_add_or_delete_clinics(org_a, admin_a):
    client = logged_in(admin_a)

    add = client.get(reverse("admin:organizations_organization_add"))
    delete = client.post(reverse("admin:organizations_organization_delete", args=[org_a.pk]), {"post": "yes"})

    assert add.status_code == 403
    assert delete.status_code == 403
    assert Organization.objects.filter(pk=org_a.pk).exists()


def test_operator_adds_a_clinic_in_the_console(operator):
    client = logged_in(operator)
    page = client.get(reverse("admin:organizations_organization_add"))
    data = change_form_data(page)
    data.update({"name": "New Clinic", "slug": "new-clinic", "agent_languages": ["en"], "services": "Sick visits"})

    response = client.post(reverse("admin:organizations_organization_add"), data)

    assert page.status_code == 200
    assert response.status_code == 302
    created = Organization.objects.get(slug="new-clinic")
    assert created.services == ["Sick visits"]
    # A new clinic starts with the default intake fields, as one created through the service does.
    assert list(created.intake_fields.values_list("name", flat=True)) == [f["name"] for f in DEFAULT_INTAKE_FIELDS]


def test_clinic_admin_sets_providers_turn_detection_and_noise_reduction_in_the_console(org_a, admin_a):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    data.update(
        {
            "providers": "Dr. Amara Okafor\nLuis Ortega, NP",
            "turn_detection": "semantic_vad",
            "vad_eagerness": "low",
            "noise_reduction": "far_field",
        }
    )

    response = client.post(change_url(org_a), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    org_a.refresh_from_db()
    assert org_a.providers == ["Dr. Amara Okafor", "Luis Ortega, NP"]
    assert (org_a.turn_detection, org_a.vad_eagerness, org_a.noise_reduction) == ("semantic_vad", "low", "far_field")


def test_an_idle_timeout_with_semantic_turn_detection_is_a_field_error(org_a, admin_a):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    data.update({"turn_detection": "semantic_vad", "idle_timeout_ms": "10000"})

    response = client.post(change_url(org_a), data)

    assert response.status_code == 200
    assert "idle_timeout_ms" in response.context["adminform"].form.errors
    org_a.refresh_from_db()
    assert (org_a.turn_detection, org_a.idle_timeout_ms) == ("server_vad", None)


@pytest.mark.parametrize("persona", ["admin_a", "staff_a"])
def test_the_clinic_page_shows_the_id_the_api_names_the_clinic_by(request, org_a, persona):
    html = logged_in(request.getfixturevalue(persona)).get(change_url(org_a)).content.decode()

    assert "Clinic id (API)" in html and str(org_a.pk) in html
