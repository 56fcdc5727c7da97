"""The clinic home page in a real browser (Debian's chromium driven by Playwright, as the board's browser test).

A clinic admin signs in through the console's login form and lands on the home page: counts, the SVG chart under the
production Content-Security-Policy (any blocked style or script is a console error, which fails the test), the
period selector, open escalations oldest first with working links, and a CSV download. Screenshots go to
test-artifacts/home/.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.conf import settings as django_settings

from calls.home import views as home_views
from calls.models import Call, Escalation
from calls.tests.test_board_browser import browser, live  # noqa: F401 - the shared live server and Chromium
from conftest import PASSWORD, make_org, make_user
from organizations.models import BusinessHours, Membership

ARTIFACTS = django_settings.BASE_DIR / "test-artifacts" / "home"
NY = zoneinfo.ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 6, 17, 15, 30, tzinfo=NY)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def at(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(NOW.date() - dt.timedelta(days=days_ago), dt.time(hour, minute), tzinfo=NY)


@pytest.fixture
def clinic(db, monkeypatch):
    """Created before the browser starts (Playwright's sync API then owns this thread's event loop)."""
    monkeypatch.setattr(home_views, "clock", lambda: NOW)
    org = make_org("riverside-clinic")
    other = make_org("other-clinic")
    for weekday in range(5):
        BusinessHours.objects.create(organization=org, weekday=weekday, opens=dt.time(9), closes=dt.time(17))
    make_user("rita", org, Membership.Role.ADMIN)
    calls = []
    for index in range(40):
        days_ago, hour = index % 7, 7 + (index * 5) % 13
        calls.append(
            Call.objects.create(
                organization=org,
                channel="phone" if index % 3 else "web",
                status="completed",
                end_reason="transferred" if index % 9 == 0 else "agent_ended",
                started_at=at(days_ago, hour, index % 60),
                ended_at=at(days_ago, hour, index % 60) + dt.timedelta(minutes=4),
                caller_name=f"Caller {index}",
                metadata={"voicemail": {"recording_sid": "RE1"}} if index % 11 == 0 else {},
                escalated=index % 6 == 0,
                escalation_level="urgent" if index % 6 == 0 else "",
                realtime_model="gpt-realtime-2.1",
                input_audio_tokens=20_000,
                output_audio_tokens=8_000,
            )
        )
    Call.objects.create(
        organization=other,
        channel="web",
        status="completed",
        started_at=at(0, 10),
        ended_at=at(0, 11),
        caller_name="Other Clinic Caller",
    )
    opened = []
    for index, (level, hours_ago) in enumerate([("urgent", 5), ("emergency", 30), ("human", 2)]):
        escalation = Escalation.objects.create(
            call=calls[index], organization=org, level=level, source="keyword", reason="chest_pain"
        )
        Escalation.objects.filter(pk=escalation.pk).update(created_at=NOW - dt.timedelta(hours=hours_ago))
        opened.append(escalation)
    for seconds in (40, 90, 600):
        escalation = Escalation.objects.create(call=calls[5], organization=org, level="emergency", source="keyword")
        Escalation.objects.filter(pk=escalation.pk).update(
            created_at=at(0, 10), status="acknowledged", acknowledged_at=at(0, 10) + dt.timedelta(seconds=seconds)
        )
    return org, opened


def _sign_in(browser, live):  # noqa: F811 - the fixture, passed in
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Failed requests are caught by URL above (the browser's favicon probe aside); other console errors here.
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None,
    )
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None,
    )
    page.goto(f"{live.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live.url}/admin/")
    return page, errors


def test_a_clinic_admin_lands_on_a_home_page_with_charts_counts_and_an_export(live, clinic, browser, tmp_path):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    org, opened = clinic
    page, errors = _sign_in(browser, live)

    assert page.inner_text("h1.home-title") == org.name
    assert page.get_attribute("#kpi-calls .home-kpi__value", "data-value") == "40"
    assert page.locator("svg#calls-chart[role=img]").is_visible()
    assert "Calls by day" in page.text_content("#calls-chart-title")
    assert page.locator("svg#calls-chart rect.home-chart__calls").count() == 7
    # The chart's styles come from the static file (the CSP refuses inline ones): bars are filled, not black.
    fill = page.eval_on_selector("svg#calls-chart rect.home-chart__calls", "el => getComputedStyle(el).fill")
    assert fill not in ("", "rgb(0, 0, 0)")
    items = page.locator("#open-escalations li a.home-open__link")
    assert items.count() == 3
    expected = [opened[1], opened[0], opened[2]]  # 30 h, 5 h and 2 h old: the oldest first
    assert [items.nth(i).get_attribute("href") for i in range(3)] == [
        f"/admin/calls/escalation/{escalation.pk}/change/" for escalation in expected
    ]
    assert "Other Clinic Caller" not in page.content()
    emergency = page.locator('#levels tr[data-level="emergency"]')
    assert emergency.locator("td.median").inner_text() == "1m 30s"
    assert emergency.locator("td.p90").inner_text() == "10m 00s"
    page.screenshot(path=str(ARTIFACTS / "01-home-last-7-days.png"), full_page=True)

    page.click('a.home-period[data-period="today"]')
    page.wait_for_url("**/admin/?period=today")
    assert page.locator("svg#calls-chart rect.home-chart__hit").count() == 24
    assert "Calls by hour today" in page.inner_text("#chart-heading")
    page.screenshot(path=str(ARTIFACTS / "02-home-today.png"), full_page=True)

    page.click('a.home-period[data-period="30d"]')
    page.wait_for_url("**/admin/?period=30d")
    page.click("details.home-numbers summary")
    assert page.locator("#chart-table tbody tr").count() == 30
    page.screenshot(path=str(ARTIFACTS / "03-home-last-30-days-numbers.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("#export-form button[type=submit]")
    saved = tmp_path / "calls.csv"
    download_info.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("call_id,started_at") and len(lines) == 41

    page.click("#open-escalations li:first-child a.home-open__link")
    page.wait_for_url(f"**/admin/calls/escalation/{opened[1].pk}/change/")
    assert errors == []
