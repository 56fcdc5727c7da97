"""Numbers a clinic's calls are sent to (escalation, on-call, transfers) stay in the clinic's dial countries and out
of premium-rate and shared-cost ranges: one compromised clinic admin account must not turn the fallback into toll
fraud."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from conftest import token_for
from organizations.dialing import dial_refusal
from organizations.models import Organization

PREMIUM_OR_FOREIGN = [
    "+882355000000",  # international shared cost (no country)
    "+8819000000",  # satellite
    "+979123456789",  # international premium rate
    "+19005550000",  # NANP 900 premium
    "+449098790000",  # UK 09 premium
    "+442079460000",  # a London landline: valid, but not in the clinic's countries
]


@pytest.mark.parametrize("number", PREMIUM_OR_FOREIGN)
def test_premium_shared_cost_and_foreign_numbers_are_refused(number):
    assert dial_refusal(number, ["US"]) is not None


@pytest.mark.parametrize("number", ["+14155550100", "+16175550110", "+18005550100"])
def test_ordinary_numbers_of_the_clinics_country_are_dialled(number):
    assert dial_refusal(number, ["US"]) is None


def test_a_uk_premium_number_stays_refused_for_a_clinic_that_dials_the_uk():
    assert dial_refusal("+442079460000", ["US", "GB"]) is None
    assert dial_refusal("+449098790000", ["US", "GB"]) is not None


@pytest.mark.parametrize("field", ["escalation_phone", "on_call_phone"])
@pytest.mark.parametrize("number", PREMIUM_OR_FOREIGN)
def test_a_clinic_admin_cannot_set_a_premium_or_foreign_phone(org_a, admin_a, field, number):
    client = Client(headers={"Authorization": f"Token {token_for(admin_a)}"})
    response = client.patch(
        f"/api/org/config/{org_a.pk}", data=json.dumps({field: number}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    org_a.refresh_from_db()
    assert getattr(org_a, field) != number


def test_dial_countries_are_not_a_setting_clinic_admins_can_change_through_the_api(org_a, admin_a):
    client = Client(headers={"Authorization": f"Token {token_for(admin_a)}"})
    response = client.patch(
        f"/api/org/config/{org_a.pk}", data=json.dumps({"dial_countries": ["GB"]}), content_type="application/json"
    )
    assert response.status_code == 400
    org_a.refresh_from_db()
    assert org_a.dial_countries == ["US"]


def test_a_premium_number_stored_before_the_rules_is_never_dialled(org_a):
    Organization.objects.filter(pk=org_a.pk).update(escalation_phone="+882355000000")
    org_a.refresh_from_db()
    assert not org_a.may_dial(org_a.escalation_phone)
    assert org_a.may_dial("+14155550100")


def test_in_the_console_a_clinic_admin_sees_the_dial_countries_and_only_an_operator_changes_them(
    org_a, admin_a, operator
):
    from conftest import logged_in
    from organizations.tests.test_admin_config import change_form_data, change_url

    client = logged_in(admin_a)
    page = client.get(change_url(org_a))
    assert "Dial countries" in page.content.decode()
    data = change_form_data(page)
    data["dial_countries"] = "US, GB"
    data["escalation_phone"] = "+442079460000"
    response = client.post(change_url(org_a), data)
    org_a.refresh_from_db()
    assert org_a.dial_countries == ["US"] and org_a.escalation_phone == "+14155550100"
    assert response.status_code == 200  # the form answers with the phone's error

    client = logged_in(operator)
    data = change_form_data(client.get(change_url(org_a)))
    data["dial_countries"] = "US, GB"
    data["escalation_phone"] = "+442079460000"
    assert client.post(change_url(org_a), data).status_code == 302
    org_a.refresh_from_db()
    assert org_a.dial_countries == ["US", "GB"] and org_a.escalation_phone == "+442079460000"
