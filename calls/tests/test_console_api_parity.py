"""The console and the API act on escalations through the same services, so they leave the same records: the same
audit rows (only `via` tells them apart) and the same staff_actions entry on the call."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from calls.models import AuditEvent, Call, Escalation, Notification
from calls.services import escalation_create
from conftest import logged_in, make_call, token_for

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:calls_escalation_changelist"


def api(user) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(user)}"})


def changes_since(mark: int) -> list[tuple]:
    """The create/change rows written after `mark`, without ids and times: what, who, through where."""
    return [
        (row.object_type, row.action, tuple(row.details.get("fields", [])), row.actor_user_id, row.via)
        for row in AuditEvent.objects.filter(pk__gt=mark, action__in=["create", "change"]).order_by("id")
    ]


def last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def without_via(rows: list[tuple]) -> list[tuple]:
    return [row[:-1] for row in rows]


def staff_actions(call: Call) -> list[dict]:
    call.refresh_from_db()
    return [
        {key: value for key, value in entry.items() if key not in ("at", "escalation_id")}
        for entry in call.metadata.get("staff_actions", [])
    ]


def open_escalation(org) -> Escalation:
    escalation, _ = escalation_create(call=make_call(org), level="urgent", source="keyword", reason="bleeding")
    return escalation


def test_escalating_in_the_console_leaves_what_the_api_leaves(org_a, staff_a):
    by_api, by_console = make_call(org_a), make_call(org_a)

    mark = last_id()
    response = api(staff_a).post(
        f"/api/calls/{by_api.pk}/escalate",
        {"level": "human", "reason": "Wants the nurse"},
        content_type="application/json",
    )
    assert response.status_code == 201
    api_rows = changes_since(mark)

    mark = last_id()
    response = logged_in(staff_a).post(
        reverse("admin:calls_escalation_add"),
        {"call": str(by_console.pk), "level": "human", "reason": "Wants the nurse", "evidence": ""},
    )
    assert response.status_code == 302
    console_rows = changes_since(mark)

    assert without_via(console_rows) == without_via(api_rows)
    assert {row[-1] for row in api_rows} == {"api"} and {row[-1] for row in console_rows} == {"console"}
    assert staff_actions(by_console) == staff_actions(by_api) != []
    assert staff_actions(by_api)[0]["action"] == "escalate"
    [from_api] = Escalation.objects.filter(call=by_api)
    [from_console] = Escalation.objects.filter(call=by_console)
    for field in ("level", "source", "reason", "created_by_id", "status"):
        assert getattr(from_console, field) == getattr(from_api, field), field
    assert (
        Notification.objects.filter(escalation=from_console).count()
        == Notification.objects.filter(escalation=from_api).count()
    )


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_console_actions_leave_what_the_api_leaves(org_a, staff_a, action):
    by_api, by_action, by_button = open_escalation(org_a), open_escalation(org_a), open_escalation(org_a)

    note = {"note": "called back"}  # resolving asks for one everywhere; acknowledging ignores it
    mark = last_id()
    response = api(staff_a).post(f"/api/escalations/{by_api.pk}/{action}", note, content_type="application/json")
    assert response.status_code == 200
    api_rows = changes_since(mark)

    mark = last_id()
    response = logged_in(staff_a).post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [str(by_action.pk)], **note}
    )
    assert response.status_code == 302
    action_rows = changes_since(mark)

    mark = last_id()
    response = logged_in(staff_a).post(reverse("admin:calls_escalation_button", args=[by_button.pk, action]), note)
    assert response.status_code == 302
    button_rows = changes_since(mark)

    assert api_rows and without_via(action_rows) == without_via(api_rows) == without_via(button_rows)
    assert {row[-1] for row in action_rows + button_rows} == {"console"}
    for escalation in (by_api, by_action, by_button):
        escalation.refresh_from_db()
    assert by_api.status == by_action.status == by_button.status
    assert by_api.acknowledged_by == by_action.acknowledged_by == by_button.acknowledged_by == staff_a
    assert staff_actions(by_action.call) == staff_actions(by_button.call) == staff_actions(by_api.call)
