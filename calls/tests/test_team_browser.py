"""Team management and the audit trail in a real browser (Debian's chromium driven by Playwright, served as in
test_board_browser). A clinic admin adds a colleague, who sets a password through the invitation link and signs in;
the admin changes a role, is stopped from removing the clinic's last admin, resets access and removes a member; the
audit trail then reads in names and actions, each object a click away. Another clinic's admin finds the team page
absent. Screenshots go to test-artifacts/team/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from calls.models import AuditEvent
from calls.tests.test_board_browser import LiveServer, browser, live  # noqa: F401 - shared fixtures
from conftest import PASSWORD, make_call, make_org, make_user
from organizations.models import Membership

ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "team"
NEW_PASSWORD = "a-long-new-passphrase-9"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clinics(db):
    """Created before the browser starts (Playwright's sync loop then owns this thread; later database reads go
    through the server's sync thread)."""
    clinic_a, clinic_b = make_org("clinic-a"), make_org("clinic-b")
    rita = make_user("rita", clinic_a, Membership.Role.ADMIN)
    rita.first_name, rita.last_name = "Rita", "Alvarez"
    rita.save()
    make_user("sam", clinic_a, Membership.Role.STAFF)
    make_user("bob", clinic_b, Membership.Role.ADMIN)
    call = make_call(clinic_a, caller_name="Robert Chen", caller_phone="+14155550123")
    return clinic_a, call


def _page(browser, live: LiveServer):  # noqa: F811 - the fixture, passed in
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def _log_in(page, live: LiveServer, username: str, password: str, next_path: str) -> None:  # noqa: F811
    page.goto(f"{live.url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live.url}{next_path}")


def _membership_of(username: str, clinic_id) -> str | None:
    return (
        Membership.objects.filter(user__username=username, organization_id=clinic_id)
        .values_list("role", flat=True)
        .first()
    )


def _team_rows() -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(object_type__in=["membership", "user"]).values_list("object_type", "action"))


def test_a_clinic_admin_manages_the_team_and_reads_the_audit_trail(live, clinics, browser, settings):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    clinic_a, call = clinics
    settings.PUBLIC_BASE_URL = live.url  # the links the page hands out point at this server
    team = f"/admin/organizations/organization/{clinic_a.pk}/team/"

    page, errors = _page(browser, live)
    _log_in(page, live, "rita", PASSWORD, team)
    assert page.locator('tr.member[data-username="sam"]').is_visible()
    page.screenshot(path=str(ARTIFACTS / "01-team.png"), full_page=True)

    # Add a colleague: the invitation link is shown once.
    page.fill("#id_username", "nina")
    page.fill("#id_email", "nina@example.com")
    page.fill("#id_first_name", "Nina")
    page.select_option("#id_role", "staff")
    page.click("#team-add-submit")
    page.wait_for_selector("#access-link-url")
    link = page.input_value("#access-link-url")
    assert link.startswith(f"{live.url}/account/set-password/")
    assert page.locator('tr.member[data-username="nina"]').is_visible()
    page.screenshot(path=str(ARTIFACTS / "02-invitation-link.png"), full_page=True)

    # The colleague sets a password through the link and signs in.
    invited, invited_errors = _page(browser, live)
    invited.goto(link)
    invited.wait_for_selector("#id_new_password1")
    invited.fill("#id_new_password1", NEW_PASSWORD)
    invited.fill("#id_new_password2", NEW_PASSWORD)
    invited.screenshot(path=str(ARTIFACTS / "03-set-password.png"), full_page=True)
    invited.click("input[type=submit]")
    invited.wait_for_url(re.compile(r".*/account/set-password/done/$"))
    _log_in(invited, live, "nina", NEW_PASSWORD, "/admin/")
    assert "Site administration" in invited.content() or invited.locator("#content").is_visible()
    invited.goto(link)  # used once: no longer valid
    assert "invalid" in invited.content().lower()

    # The last admin cannot remove herself.
    page.click('tr.member[data-username="rita"] input.remove-member')
    page.wait_for_selector(".messagelist .error")
    assert "at least one clinic admin" in page.inner_text(".messagelist")
    page.screenshot(path=str(ARTIFACTS / "04-last-admin-kept.png"), full_page=True)
    assert live.run_in_server(_membership_of, "rita", clinic_a.pk) == "admin"

    # Promote Sam, reset his access, remove Nina.
    page.select_option('tr.member[data-username="sam"] select[name=role]', "admin")
    page.click('tr.member[data-username="sam"] input.change-role')
    page.wait_for_selector(".messagelist .success")
    assert live.run_in_server(_membership_of, "sam", clinic_a.pk) == "admin"
    page.click('tr.member[data-username="sam"] input.reset-access')
    page.wait_for_selector("#access-link-url")
    page.screenshot(path=str(ARTIFACTS / "05-access-reset.png"), full_page=True)
    page.click('tr.member[data-username="nina"] input.remove-member')
    page.wait_for_selector(".messagelist .success")
    assert page.locator('tr.member[data-username="nina"]').count() == 0
    assert live.run_in_server(_membership_of, "nina", clinic_a.pk) is None
    assert sorted(live.run_in_server(_team_rows)) == [
        ("membership", "change"),
        ("membership", "create"),
        ("membership", "delete"),
        ("user", "change"),
        ("user", "change"),
    ]

    # Read a call, then the audit trail: names and actions, each object a click away.
    page.goto(f"{live.url}/admin/calls/call/{call.pk}/change/")
    page.goto(f"{live.url}/admin/calls/auditevent/")
    trail = page.inner_text("#result_list")
    assert "Rita Alvarez viewed the call of Robert Chen." in trail
    assert "Rita Alvarez added the team membership of Nina." in trail
    assert "Rita Alvarez changed the role in the team membership of sam." in trail
    assert "Rita Alvarez removed the team membership of Nina." in trail
    assert "Rita Alvarez reset the access of sam." in trail
    page.screenshot(path=str(ARTIFACTS / "06-audit-trail.png"), full_page=True)
    page.click("#result_list a:text('Robert Chen')")
    page.wait_for_url(f"{live.url}/admin/calls/call/{call.pk}/change/")
    page.goto(f"{live.url}/admin/calls/call/{call.pk}/history/")
    assert "Rita Alvarez viewed the call of Robert Chen." in page.inner_text("#change-history")
    page.screenshot(path=str(ARTIFACTS / "07-call-history.png"), full_page=True)
    page.goto(f"{live.url}/admin/calls/auditevent/")
    page.click("#result_list tbody tr:first-child th a")  # the time opens the raw row with its ids
    page.wait_for_selector(".field-object_id, .field-object_ids")
    page.screenshot(path=str(ARTIFACTS / "08-audit-row.png"), full_page=True)

    # Another clinic's admin: the team page is absent.
    outsider, _ = _page(browser, live)
    _log_in(outsider, live, "bob", PASSWORD, "/admin/")
    response = outsider.goto(f"{live.url}{team}")
    assert response is not None and response.status == 404
    assert errors == [] and invited_errors == []
