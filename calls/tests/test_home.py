"""The clinic home page: the numbers it shows match the calls and escalations behind them, clinic by clinic."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.home import views as home_views
from calls.models import AuditEvent, Call, Escalation
from conftest import logged_in, make_user
from organizations.models import BusinessHours, Membership

NY = zoneinfo.ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 6, 17, 15, 30, tzinfo=NY)  # a Wednesday afternoon in clinic A's zone


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(home_views, "clock", lambda: NOW)


def local(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    day = NOW.date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NY)


def seed_call(org, started_at, *, status="completed", **fields) -> Call:
    ended = None if status == "in_progress" else started_at + dt.timedelta(minutes=3)
    return Call.objects.create(
        organization=org, channel=fields.pop("channel", "phone"), status=status, started_at=started_at,
        ended_at=ended, **fields,
    )  # fmt: skip


def seed_escalation(call, level, created_at, *, acked_after_s=None) -> Escalation:
    escalation = Escalation.objects.create(call=call, organization=call.organization, level=level, source="keyword")
    updates = {"created_at": created_at}
    if acked_after_s is not None:
        updates |= {"status": "acknowledged", "acknowledged_at": created_at + dt.timedelta(seconds=acked_after_s)}
    Escalation.objects.filter(pk=escalation.pk).update(**updates)
    escalation.refresh_from_db()
    return escalation


@pytest.fixture
def clinic(org_a, org_b, admin_a):
    for weekday in range(5):  # Monday to Friday, 9:00 to 17:00
        BusinessHours.objects.create(organization=org_a, weekday=weekday, opens=dt.time(9), closes=dt.time(17))
    transferred = seed_call(org_a, local(0, 11, 20), end_reason="transferred", caller_name="Robert Chen")
    seed_call(org_a, local(0, 10, 5), end_reason="agent_ended")
    seed_call(org_a, local(0, 8, 10), metadata={"voicemail": {"recording_sid": "RE1"}})  # before opening
    seed_call(org_a, local(0, 12, 0), status="failed", end_reason="error")
    seed_call(org_a, local(0, 14, 0), status="in_progress")
    seed_call(org_a, local(0, 13, 0), channel="web", status="abandoned", end_reason="interrupted")  # never connected
    seed_call(org_a, local(1, 20, 0), reviewed_at=NOW, reviewed_by=admin_a)  # yesterday evening: after hours
    seed_call(org_a, local(10, 10, 0))
    seed_call(org_b, local(0, 10, 0), metadata={"voicemail": {}})  # another clinic: never counted for A
    for seconds in (300, 30, 60):
        seed_escalation(transferred, "emergency", local(0, 11, 21), acked_after_s=seconds)
    urgent = seed_escalation(transferred, "urgent", local(0, 13, 30))
    human = seed_escalation(transferred, "human", local(3, 9, 0))  # open for three days: first in the list
    foreign = seed_escalation(Call.objects.get(organization=org_b), "emergency", local(5, 9, 0))
    return {"urgent": urgent, "human": human, "foreign": foreign}


def kpi(response, key: str) -> int:
    return next(item["value"] for item in response.context["kpis"] if item["key"] == key)


def test_clinic_admin_opens_the_console_on_their_clinic_home_with_todays_numbers(clinic, admin_a, org_a):
    response = logged_in(admin_a).get("/admin/?period=today")
    assert response.status_code == 200
    assert response.context["organization"] == org_a
    assert {key: kpi(response, key) for key in ("calls", "answered", "transferred", "voicemail", "after_hours")} == {
        "calls": 5,  # the never-connected web session is not a call
        "answered": 2,
        "transferred": 1,
        "voicemail": 1,
        "after_hours": 1,
    }
    assert kpi(response, "failed") == 1
    stats = response.context["stats"]
    assert (stats.live, stats.never_connected, stats.not_reviewed) == (1, 1, 4)
    by_hour = {hour: total for hour, total, _escalated in stats.buckets}
    assert len(by_hour) == 24
    assert {hour: n for hour, n in by_hour.items() if n} == {8: 1, 10: 1, 11: 1, 12: 1, 14: 1}
    html = response.content.decode()
    assert 'id="kpi-calls"' in html and 'data-value="5"' in html
    assert "<svg" in html and 'role="img"' in html and "Calls by hour today" in html


def test_the_7_and_30_day_periods_count_by_the_clinics_calendar_days(clinic, admin_a):
    client = logged_in(admin_a)
    week = client.get("/admin/?period=7d")
    assert (kpi(week, "calls"), kpi(week, "after_hours")) == (6, 2)
    days = week.context["stats"].buckets
    assert [day for day, _n, _e in days][-1] == NOW.date() and len(days) == 7
    assert [n for _day, n, _e in days][-2:] == [1, 5]
    month = client.get("/admin/?period=30d")
    assert kpi(month, "calls") == 7 and len(month.context["stats"].buckets) == 30


def test_escalations_by_level_show_the_median_and_p90_time_to_acknowledge(clinic, admin_a):
    response = logged_in(admin_a).get("/admin/?period=today")
    levels = {row["level"]: row for row in response.context["levels"]}
    emergency = levels["emergency"]
    # Nearest rank over 30 s, 60 s, 300 s: the median is the 2nd value, the 90th percentile the 3rd.
    assert (emergency["raised"], emergency["acknowledged"], emergency["median"], emergency["p90"]) == (
        3,
        3,
        "1m 00s",
        "5m 00s",
    )
    assert (levels["urgent"]["raised"], levels["urgent"]["open"], levels["urgent"]["median"]) == (1, 1, "—")
    assert levels["human"]["raised"] == 0  # raised three days ago: not today's
    stats = response.context["stats"]
    assert [row.median_ack for row in stats.levels if row.level == "emergency"] == [dt.timedelta(seconds=60)]


def test_open_escalations_are_listed_oldest_first_with_links_and_the_read_is_audited(clinic, admin_a):
    response = logged_in(admin_a).get("/admin/?period=today")
    items = response.context["open_escalations"]
    assert [item["url"] for item in items] == [
        f"/admin/calls/escalation/{clinic['human'].pk}/change/",
        f"/admin/calls/escalation/{clinic['urgent'].pk}/change/",
    ]
    assert response.context["stats"].open_total == 2
    assert items[0]["caller"] == "Robert Chen"
    html = response.content.decode()
    assert html.index(str(clinic["human"].pk)) < html.index(str(clinic["urgent"].pk))
    event = AuditEvent.objects.get(action="list", object_type="escalation", actor_username="alice")
    assert sorted(event.object_ids) == sorted([str(clinic["human"].pk), str(clinic["urgent"].pk)])
    assert event.via == "console"


def test_not_reviewed_links_to_the_filtered_call_list(clinic, admin_a, org_a):
    client = logged_in(admin_a)
    url = client.get("/admin/?period=7d").context["not_reviewed_url"]
    assert "reviewed=no" in url and f"organization__id__exact={org_a.pk}" in url
    listed = client.get(url)
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 4  # the 4 ended, unreviewed calls of the week


def test_cost_comes_from_the_call_ledger(clinic, admin_a, org_a):
    Call.objects.filter(organization=org_a, started_at=local(0, 10, 5)).update(
        realtime_model="gpt-realtime-2.1", input_audio_tokens=1_000_000, output_audio_tokens=500_000
    )
    response = logged_in(admin_a).get("/admin/?period=today")
    assert response.context["cost"] == "$64.00"  # 1M audio in at $32 + 0.5M audio out at $64 per 1M


def test_a_clinic_home_never_counts_another_clinics_calls(clinic, admin_b, org_a, org_b):
    client = logged_in(admin_b)
    response = client.get("/admin/?period=today")
    assert response.context["organization"] == org_b
    assert (kpi(response, "calls"), kpi(response, "voicemail")) == (1, 1)
    assert [item["url"] for item in response.context["open_escalations"]] == [
        f"/admin/calls/escalation/{clinic['foreign'].pk}/change/"
    ]
    assert client.get(f"/admin/home/{org_a.pk}/").status_code == 404
    assert client.get(f"/admin/home/{uuid.uuid4()}/").status_code == 404


def test_staff_see_the_home_page_too_but_no_export(clinic, org_a):
    staff = make_user("sam", org_a, Membership.Role.STAFF)
    response = logged_in(staff).get("/admin/")
    assert response.status_code == 200 and kpi(response, "calls") == 6
    assert response.context["can_export"] is False
    assert 'id="export-form"' not in response.content.decode()


def test_operators_keep_the_stock_index_with_a_link_to_each_clinic_home(clinic, operator, org_a, org_b):
    client = logged_in(operator)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "app_list" in response.context  # Django's own index
    links = [clinic["url"] for clinic in response.context["clinic_homes"]]
    assert links == [f"/admin/home/{org_a.pk}/", f"/admin/home/{org_b.pk}/"]
    home = client.get(links[0] + "?period=today")
    assert home.status_code == 200 and kpi(home, "calls") == 5


def test_an_unknown_period_is_a_clear_400(clinic, admin_a):
    response = logged_in(admin_a).get("/admin/?period=year")
    assert response.status_code == 400
    assert "today, 7d or 30d" in response.content.decode()


def test_signed_out_visitors_go_to_the_login_form(clinic, client, org_a):
    for url in ("/admin/", f"/admin/home/{org_a.pk}/", f"/admin/home/{org_a.pk}/export/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def _home_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/admin/?period=30d").status_code == 200
    return len(captured.captured_queries)


def test_the_number_of_queries_does_not_grow_with_the_calls(clinic, admin_a, org_a, django_assert_max_num_queries):
    client = logged_in(admin_a)
    client.get("/admin/")  # warm the session and content types
    small = _home_queries(client)
    calls = [seed_call(org_a, local(day % 30, 9 + day % 8), end_reason="agent_ended") for day in range(200)]
    for index, call in enumerate(calls[:60]):
        seed_escalation(
            call, ["emergency", "urgent", "human", "uncertain"][index % 4], call.started_at, acked_after_s=index
        )
    large = _home_queries(client)
    assert large == small
    with django_assert_max_num_queries(25):
        client.get("/admin/?period=30d")
