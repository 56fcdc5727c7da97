"""The live escalation board page: login required, scoped to the user's clinics, escaped, linked from the console."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from calls.models import AuditEvent
from calls.services import escalation_acknowledge, escalation_create, escalation_resolve
from conftest import PASSWORD, logged_in, make_call, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    # Tests run without collectstatic; the manifest storage would refuse {% static %}.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _snapshot(response) -> list[dict]:
    html = response.content.decode()
    start = html.index('<script id="board-snapshot" type="application/json">') + len(
        '<script id="board-snapshot" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_anonymous_visitors_are_sent_to_the_console_login(db):
    response = Client().get("/board/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/board/")


def test_staff_log_in_through_the_admin_form_and_land_on_the_board(staff_a):
    client = Client()
    response = client.post(
        "/admin/login/?next=/board/", {"username": "sam", "password": PASSWORD, "next": "/board/"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/board/"
    assert response.status_code == 200 and b"Live escalation board" in response.content


def test_the_board_lists_open_and_acknowledged_escalations_of_my_clinics_only(org_a, org_b, staff_a):
    call_a = make_call(org_a, caller_name="Jane Doe", caller_phone="+14155550199")
    emergency, _ = escalation_create(call=call_a, level="emergency", source="keyword", reason="chest_pain")
    urgent, _ = escalation_create(call=make_call(org_a), level="urgent", source="keyword", reason="bleeding")
    escalation_acknowledge(escalation=urgent, user=staff_a)
    resolved, _ = escalation_create(call=make_call(org_a), level="human", source="keyword", reason="human_request")
    escalation_resolve(escalation=resolved, user=staff_a)
    escalation_create(call=make_call(org_b), level="emergency", source="keyword", reason="stroke_signs")

    response = logged_in(staff_a).get("/board/")
    assert response.status_code == 200
    items = {item["id"]: item for item in _snapshot(response)}
    assert set(items) == {str(emergency.pk), str(urgent.pk)}
    assert items[str(emergency.pk)]["level"] == "emergency" and items[str(emergency.pk)]["reason_code"] == "chest_pain"
    assert items[str(emergency.pk)]["call_url"] == f"/admin/calls/call/{call_a.pk}/change/"
    assert items[str(urgent.pk)]["status"] == "acknowledged" and items[str(urgent.pk)]["acknowledged_by"] == "sam"
    # What staff need to act: the caller and a callback link, the reason in words, the clinic's target.
    shown = items[str(emergency.pk)]
    assert (shown["caller_name"], shown["caller_phone"]) == ("Jane Doe", "+14155550199")
    assert shown["callback_url"] == "tel:+14155550199"
    assert shown["reason_label"] == "Chest pain"
    assert shown["ack_target_seconds"] == 120  # the default target for emergencies: 2 minutes
    assert shown["created_at_display"].endswith(("EST", "EDT"))  # the clinic's zone, labelled
    assert shown["pages"] == []  # nobody paged: nothing extra shown
    html = response.content.decode()
    assert "stroke_signs" not in html and "Stroke signs" not in html  # clinic B's escalation never shows
    # The page's read of those details is audited, naming the patient data it sent.
    row = AuditEvent.objects.filter(via="board", action="list").latest("id")
    assert row.actor_user_id == staff_a.pk and set(row.object_ids) == set(items)
    assert row.details["fields"] == ["caller_name", "caller_phone", "trigger"]
    assert "Jane Doe" not in json.dumps(row.details)


def test_text_from_the_database_is_escaped(org_a, staff_a):
    org_a.name = "</script><script>alert(1)</script>"
    org_a.save(update_fields=["name"])
    escalation_create(call=make_call(org_a), level="emergency", source="keyword", reason="chest_pain")
    html = logged_in(staff_a).get("/board/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert _snapshot(logged_in(staff_a).get("/board/"))[0]["organization_name"] == org_a.name


def test_a_user_of_no_clinic_is_refused(db):
    response = logged_in(make_user("drifter")).get("/board/")
    assert response.status_code == 403
    assert _snapshot(response) == []


def test_the_console_links_to_the_board(staff_a):
    html = logged_in(staff_a).get("/admin/").content.decode()
    assert 'href="/board/"' in html and "Live escalation board" in html


def test_the_page_loads_its_script_and_the_csrf_token_for_the_buttons(staff_a):
    html = logged_in(staff_a).get("/board/").content.decode()
    assert "calls/board.js" in html and 'name="csrf-token"' in html
    assert 'data-socket-path="/ws/board/"' in html
