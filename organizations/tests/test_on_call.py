"""The on-call list and paging rules: who covers when (in the clinic's time zone), and the console that keeps them."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import IntegrityError
from django.urls import reverse

from conftest import logged_in
from organizations.models import OnCallPerson, Organization, PagingRule
from organizations.tests.test_admin_config import change_form_data, change_url
from organizations.vocabulary import EscalationLevel, PagingAction

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment in New York in the week of Monday 2026-03-02 (day 0 = Monday)."""
    return dt.datetime(2026, 3, 2 + day, hour, minute, tzinfo=NEW_YORK)


def person(org: Organization, name: str = "Dr. Night", **fields) -> OnCallPerson:
    fields.setdefault("mobile", "+14155550101")
    return OnCallPerson.objects.create(organization=org, name=name, **fields)


def test_a_person_with_equal_start_and_end_covers_the_whole_of_their_days(org_a):
    weekdays_only = person(org_a, weekdays=[0, 1, 2, 3, 4])
    assert weekdays_only.covers(at(0, 0, 0)) and weekdays_only.covers(at(4, 23, 59))
    assert not weekdays_only.covers(at(5, 12))


def test_an_overnight_shift_covers_the_evening_and_the_next_morning(org_a):
    night = person(org_a, weekdays=[4], starts=dt.time(18), ends=dt.time(8))  # Friday 18:00 to Saturday 08:00
    assert night.covers(at(4, 18)) and night.covers(at(4, 23)) and night.covers(at(5, 7, 59))
    assert not night.covers(at(4, 17, 59)) and not night.covers(at(5, 8)) and not night.covers(at(3, 23))


def test_hours_are_read_in_the_clinic_time_zone(org_a):
    org_a.timezone = "America/Los_Angeles"
    org_a.save()
    day_shift = person(org_a, starts=dt.time(9), ends=dt.time(17))
    assert not day_shift.covers(at(0, 10))  # 10:00 in New York is 07:00 in Los Angeles
    assert day_shift.covers(at(0, 12))


def test_the_list_is_in_order_among_those_covering_and_skips_inactive_people(org_a, org_b):
    second = person(org_a, "Second", position=2)
    first = person(org_a, "First", position=1)
    person(org_a, "Off today", position=0, weekdays=[6])
    person(org_a, "Inactive", position=0, active=False)
    person(org_b, "Other clinic", position=0)
    assert org_a.on_call_now(at(0, 12)) == [first, second]


def test_a_person_needs_a_mobile_or_an_email_and_a_valid_number(org_a):
    with pytest.raises(IntegrityError):
        OnCallPerson.objects.create(organization=org_a, name="Nobody", mobile="", email="")


def test_paging_rules_default_per_level_and_a_clinic_rule_wins(org_a):
    assert org_a.paging_for(EscalationLevel.EMERGENCY) == (PagingAction.PAGE, 3)
    assert org_a.paging_for(EscalationLevel.URGENT) == (PagingAction.PAGE, 10)
    assert org_a.paging_for(EscalationLevel.HUMAN)[0] == PagingAction.BOARD
    PagingRule.objects.create(organization=org_a, level=EscalationLevel.HUMAN, action="page", repage_minutes=5)
    assert Organization.objects.get(pk=org_a.pk).paging_for(EscalationLevel.HUMAN) == (PagingAction.PAGE, 5)


def add_on_call_row(data: dict, index: int, **row) -> None:
    prefix = "on_call_people"
    for name, value in row.items():
        data[f"{prefix}-{index}-{name}"] = value
    data[f"{prefix}-TOTAL_FORMS"] = int(data[f"{prefix}-TOTAL_FORMS"]) + 1


def test_a_clinic_admin_keeps_the_on_call_list_and_rules_in_the_console(org_a, admin_a):
    client = logged_in(admin_a)
    page = client.get(change_url(org_a))
    assert "On-call list" in page.content.decode()
    data = change_form_data(page)
    add_on_call_row(
        data,
        0,
        position=1,
        name="Dr. Rivera",
        mobile="+14155550111",
        email="rivera@clinic-a.example",
        weekdays=["0", "1", "2", "3", "4"],
        starts="18:00",
        ends="08:00",
        active="on",
    )
    data["paging_rules-0-level"] = "urgent"
    data["paging_rules-0-action"] = "board"
    data["paging_rules-0-repage_minutes"] = 15
    data["paging_rules-TOTAL_FORMS"] = 1
    data["paging_includes_caller_name"] = "on"

    response = client.post(change_url(org_a), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    [saved] = org_a.on_call_people.all()
    assert (saved.name, saved.weekdays, saved.starts, saved.ends) == (
        "Dr. Rivera",
        [0, 1, 2, 3, 4],
        dt.time(18),
        dt.time(8),
    )
    assert org_a.paging_for("urgent") == ("board", 15)
    org_a.refresh_from_db()
    assert org_a.paging_includes_caller_name is True


def test_a_bad_mobile_number_is_a_form_error_not_a_server_error(org_a, admin_a):
    client = logged_in(admin_a)
    data = change_form_data(client.get(change_url(org_a)))
    add_on_call_row(data, 0, position=0, name="Typo", mobile="555-0101", weekdays=["0"], starts="00:00", ends="00:00")
    response = client.post(change_url(org_a), data)
    assert response.status_code == 200
    assert not org_a.on_call_people.exists()
    assert "E.164" in response.content.decode()


def test_staff_see_the_on_call_list_read_only_and_outsiders_not_at_all(org_a, staff_a, admin_b):
    person(org_a, "Dr. Rivera")
    page = logged_in(staff_a).get(change_url(org_a))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dr. Rivera" in html
    assert 'name="on_call_people-0-name"' not in html  # no inputs
    outsider = logged_in(admin_b).get(change_url(org_a))
    assert outsider.status_code == 404
    assert "Dr. Rivera" not in outsider.content.decode()


def test_the_changelist_of_clinics_still_answers(org_a, admin_a):
    assert logged_in(admin_a).get(reverse("admin:organizations_organization_changelist")).status_code == 200
