"""Changes are recorded by the services that make them, in the change's own transaction, with the actor the entry
point named: no model signals, and never an actor read from the URL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.db.models.signals import post_save
from django.test import Client
from django.urls import reverse

from calls.audit import AuditUnavailable, audit_actor
from calls.models import AuditEvent, AuditEventQuerySet, Call, Escalation, Intake, TranscriptSegment
from calls.reaper import calls_reap
from calls.services import call_usage_add, escalation_create, transcript_segment_append
from conftest import logged_in, make_call, token_for

pytestmark = pytest.mark.django_db


def rows(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def test_no_model_signal_writes_the_audit_trail():
    for model in (Call, Intake, Escalation, TranscriptSegment):
        assert not post_save.has_listeners(model), model


def test_a_change_whose_audit_row_cannot_be_written_is_not_made(org_a, monkeypatch):
    call = make_call(org_a)

    def refuse(self, objs, *args, **kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(AuditEventQuerySet, "bulk_create", refuse)

    with pytest.raises(AuditUnavailable):
        escalation_create(call=call, level="urgent", source="keyword", reason="bleeding")
    with pytest.raises(AuditUnavailable):
        transcript_segment_append(call=call, speaker="caller", text="hello")

    assert not Escalation.objects.filter(call=call).exists()
    assert not TranscriptSegment.objects.filter(call=call).exists()
    assert not Call.objects.get(pk=call.pk).escalated


def test_a_service_principal_names_its_own_via(org_a):
    call = make_call(org_a)
    with audit_actor("openai-sideband"):
        transcript_segment_append(call=call, speaker="agent", text="Hello")
    [row] = rows(object_type="transcriptsegment")
    assert (row.actor_service, row.via) == ("openai-sideband", "pipeline")


def test_changes_outside_any_request_or_principal_are_the_systems(org_a):
    call = make_call(org_a)
    [row] = rows(object_type="call", object_id=str(call.pk))
    assert (row.action, row.actor_service, row.via, row.actor_user_id) == ("create", "system", "system", None)


def test_the_reaper_records_the_calls_it_ends_as_the_system(org_a):
    call = make_call(org_a, minutes_ago=30)
    assert [reaped.pk for reaped in calls_reap(idle_seconds=60)] == [call.pk]
    change = rows(object_type="call", object_id=str(call.pk), action="change")[-1]
    assert change.actor_service == "system"
    assert {"status", "end_reason", "ended_at", "duration_seconds"} <= set(change.details["fields"])


def test_staff_api_changes_are_the_users_through_the_api(org_a, staff_a):
    call = make_call(org_a)
    client = Client(headers={"Authorization": f"Token {token_for(staff_a)}"})
    response = client.post(f"/api/calls/{call.pk}/escalate", {"level": "urgent"}, content_type="application/json")
    assert response.status_code == 201
    changes = [row for row in rows(organization_id=org_a.pk) if row.action in ("create", "change")][1:]
    assert changes and all((row.actor_user_id, row.via) == (staff_a.pk, "api") for row in changes)


def test_staff_ending_a_call_through_the_api_is_recorded_under_their_user(org_a, staff_a):
    call = make_call(org_a)
    response = Client(headers={"Authorization": f"Token {token_for(staff_a)}"}).post(
        "/api/call/end", {"call_id": str(call.pk)}, content_type="application/json"
    )
    assert response.status_code == 200
    change = rows(object_type="call", object_id=str(call.pk), action="change")[-1]
    assert (change.actor_user_id, change.actor_service, change.via) == (staff_a.pk, "", "api")


def test_console_changes_are_the_users_through_the_console(org_a, admin_a):
    call = make_call(org_a)
    response = logged_in(admin_a).post(
        reverse("admin:calls_call_changelist"), {"action": "mark_reviewed", "_selected_action": [str(call.pk)]}
    )
    assert response.status_code == 302
    change = rows(object_type="call", object_id=str(call.pk), action="change")[-1]
    assert (change.actor_user_id, change.via, change.details["fields"]) == (
        admin_a.pk,
        "console",
        ["reviewed_at", "reviewed_by"],
    )


def test_an_operator_deleting_a_call_in_the_console_is_recorded(org_a, operator):
    call = make_call(org_a)
    transcript_segment_append(call=call, speaker="caller", text="hello")

    response = logged_in(operator).post(reverse("admin:calls_call_delete", args=[call.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Call.objects.filter(pk=call.pk).exists()
    [deleted] = rows(action="delete")
    assert (deleted.object_type, deleted.object_id, deleted.organization_id) == ("call", str(call.pk), org_a.pk)
    assert (deleted.actor_user_id, deleted.via) == (operator.pk, "console")


def test_token_usage_is_summed_per_response_and_recorded(org_a):
    call = make_call(org_a)
    with audit_actor("openai-sideband"):
        call_usage_add(call=call, usage={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120})
        returned = call_usage_add(call=call, usage={"input_tokens": 50, "output_tokens": "5", "total_tokens": None})

    expected = {"input_tokens": 150, "output_tokens": 20, "total_tokens": 120, "responses": 2}
    assert returned is call and call.usage == expected
    assert Call.objects.get(pk=call.pk).usage == expected
    changes = rows(object_type="call", object_id=str(call.pk), action="change")
    assert [(row.details["fields"], row.actor_service) for row in changes] == [(["usage"], "openai-sideband")] * 2
