"""The audit trail: every read of patient data and every change is recorded with who, which clinic, what, when,
from where and under which request id; rows cannot be changed or removed; a read whose audit write fails returns
no data; clinic admins browse their own clinic's trail in the console."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from calls.audit import audit_actor
from calls.models import AuditEvent, AuditEventQuerySet, AuditImmutable, Call
from calls.services import (
    call_end,
    escalation_create,
    intake_store,
    transcript_segment_append,
)
from conftest import logged_in, make_call, make_org, make_user, token_for
from organizations.models import Membership

CANARY = "ZZQX-Canary-Audit"


def api(user, **headers) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(user)}", **headers})


def events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


@pytest.fixture
def call_a(org_a):
    call = make_call(org_a, caller_name=CANARY, caller_phone="+15550100123")
    transcript_segment_append(call=call, speaker="caller", text=f"My name is {CANARY}")
    intake_store(call=call, data={"patient_name": CANARY})
    return call


@pytest.fixture
def failing_audit(monkeypatch):
    """Every audit insert fails, as if the table were unreachable."""

    def refuse(self, objs, *args, **kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(AuditEventQuerySet, "bulk_create", refuse)


# --- Reads through the API ------------------------------------------------------------------------------------------


def test_reading_a_call_records_who_what_when_where_and_the_request_id(call_a, staff_a, settings):
    settings.TRUST_REQUEST_ID_HEADER = True  # the id a proxy in front assigned (clients' own are replaced)
    response = api(staff_a, **{"X-Request-ID": "req-audit-0001"}).get(
        f"/api/calls/{call_a.pk}", REMOTE_ADDR="203.0.113.9"
    )

    assert response.status_code == 200
    [event] = events(action="view")
    assert event.actor_user_id == staff_a.pk and event.actor_username == "sam" and event.actor_service == ""
    assert event.organization_id == call_a.organization_id
    assert (event.object_type, event.object_id) == ("call", str(call_a.pk))
    assert event.ip == "203.0.113.9"
    assert event.request_id == "req-audit-0001"
    assert event.via == "api" and event.at is not None


def test_a_list_records_every_call_it_showed_and_a_search_is_recorded_as_search(org_a, staff_a):
    shown = [make_call(org_a, minutes_ago=n + 1) for n in range(3)]

    assert api(staff_a).get("/api/calls").status_code == 200
    assert api(staff_a).get("/api/calls", {"q": "nobody-says-this"}).status_code == 200

    listed, searched = events(action="list")[-1], events(action="search")[-1]
    assert sorted(listed.object_ids) == sorted(str(call.pk) for call in shown)
    assert listed.actor_user_id == staff_a.pk and listed.organization_id == org_a.pk
    assert searched.object_ids == []  # the search found nothing, and that it happened is still recorded
    assert "nobody-says-this" not in str(searched.details)  # search terms may be patient data


def test_the_escalation_list_is_recorded(org_a, staff_a):
    escalation, _ = escalation_create(call=make_call(org_a), level="urgent", source="keyword", reason="bleeding")

    assert api(staff_a).get("/api/escalations").status_code == 200

    [event] = events(action="list", object_type="escalation")
    assert event.object_ids == [str(escalation.pk)]


def test_a_read_whose_audit_write_fails_returns_503_and_no_patient_data(call_a, staff_a, failing_audit):
    for path in (f"/api/calls/{call_a.pk}", "/api/calls", "/api/escalations"):
        response = api(staff_a).get(path)

        assert response.status_code == 503, path
        assert response.json()["error"]["code"] == "audit_unavailable"
        assert CANARY not in response.content.decode()
        assert str(call_a.pk) not in response.content.decode()


# --- Changes, from every path ---------------------------------------------------------------------------------------


def test_caller_side_changes_are_recorded_under_the_web_caller_principal(org_a):
    org_a.event_forwarding = True  # a caller-side intake needs the clinic's event-forwarding integration
    org_a.save(update_fields=["event_forwarding"])
    headers = {"X-Org-Key": org_a.publishable_key}
    started = Client(headers=headers).post(
        "/api/call/start",
        {"channel": "web", "caller": {"name": CANARY, "phone": "+15550100124"}},
        content_type="application/json",
    )
    assert started.status_code == 201
    call_id = started.json()["call_id"]
    ended = Client(headers={**headers, "X-Call-Token": started.json()["call_token"]}).post(
        "/api/call/end",
        {"call_id": call_id, "transcript": [{"speaker": "caller", "text": "hello"}], "intake": {"patient_name": "X"}},
        content_type="application/json",
    )
    assert ended.status_code == 200

    rows = events(object_id=call_id) + events(object_type="transcriptsegment") + events(object_type="intake")
    assert {(row.object_type, row.action) for row in rows} >= {
        ("call", "create"),
        ("call", "change"),
        ("transcriptsegment", "create"),
        ("intake", "create"),
    }
    assert {row.actor_service for row in rows} == {"web-caller"}
    assert all(row.organization_id == org_a.pk and row.actor_user_id is None for row in rows)
    assert all(CANARY not in str(row.details) for row in rows)  # field names, never values


def test_staff_changes_are_recorded_under_their_user(call_a, staff_a):
    response = api(staff_a).post(
        f"/api/calls/{call_a.pk}/escalate", {"level": "urgent"}, content_type="application/json"
    )

    assert response.status_code == 201
    [created] = events(object_type="escalation", action="create")
    assert created.actor_user_id == staff_a.pk and created.object_id == response.json()["id"]
    changed = events(object_type="call", action="change", actor_user_id=staff_a.pk)
    assert changed and set(changed[-1].details["fields"]) <= {"escalated", "escalation_level", "metadata"}


def test_pipeline_changes_are_recorded_under_the_named_service(call_a):
    with audit_actor("openai-sideband"):
        transcript_segment_append(call=call_a, speaker="agent", text="Thanks")

    row = events(object_type="transcriptsegment")[-1]
    assert row.actor_service == "openai-sideband" and row.details["call_id"] == str(call_a.pk)


def test_an_unknown_service_principal_is_refused():
    with pytest.raises(ValueError), audit_actor("mallory"):
        pass


def test_every_row_names_an_actor(call_a, staff_a):
    api(staff_a).get(f"/api/calls/{call_a.pk}")
    call_end(call=call_a)
    assert AuditEvent.objects.exists()
    assert not AuditEvent.objects.filter(actor_user_id=None, actor_service="").exists()


# --- Append-only ----------------------------------------------------------------------------------------------------


def test_the_application_cannot_change_or_delete_audit_rows(call_a):
    event = AuditEvent.objects.filter(object_type="call").first()
    assert event is not None
    event.action = "view"
    with pytest.raises(AuditImmutable):
        event.save()
    with pytest.raises(AuditImmutable):
        event.delete()
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="view")
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "create"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_update_and_delete_for_any_client(call_a):
    pk = AuditEvent.objects.values_list("pk", flat=True).first()
    assert pk is not None
    for sql in (
        "UPDATE calls_auditevent SET action = 'view' WHERE id = %s",
        "DELETE FROM calls_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [pk])
    assert AuditEvent.objects.filter(pk=pk).exists()


def test_deleting_a_call_keeps_its_audit_rows(call_a, operator):
    call_id = str(call_a.pk)
    before = AuditEvent.objects.filter(object_id=call_id).count()
    Call.objects.filter(pk=call_a.pk).delete()
    assert AuditEvent.objects.filter(object_id=call_id).count() == before > 0


# --- The console ----------------------------------------------------------------------------------------------------


def test_console_list_search_and_change_page_are_recorded(call_a, admin_a):
    client = logged_in(admin_a)
    changelist = reverse("admin:calls_call_changelist")

    assert client.get(changelist).status_code == 200
    assert client.get(changelist, {"q": "Canary"}).status_code == 200
    assert client.get(reverse("admin:calls_call_change", args=[call_a.pk])).status_code == 200
    assert client.get(reverse("admin:calls_escalation_changelist")).status_code == 200

    console = events(via="console", actor_user_id=admin_a.pk)
    assert [(row.action, row.object_type) for row in console] == [
        ("list", "call"),
        ("search", "call"),
        ("view", "call"),
        ("list", "escalation"),
    ]
    assert console[0].object_ids == [str(call_a.pk)] and console[1].object_ids == [str(call_a.pk)]
    assert console[2].object_id == str(call_a.pk)


def test_a_console_page_whose_audit_write_fails_shows_no_patient_data(call_a, admin_a, failing_audit):
    client = logged_in(admin_a)
    for url in (reverse("admin:calls_call_changelist"), reverse("admin:calls_call_change", args=[call_a.pk])):
        response = client.get(url)
        assert response.status_code == 503
        assert CANARY not in response.content.decode()


def test_the_board_page_records_its_snapshot_and_fails_closed(org_a, staff_a, monkeypatch):
    escalation, _ = escalation_create(call=make_call(org_a), level="urgent", source="keyword", reason="bleeding")
    assert logged_in(staff_a).get("/board/").status_code == 200
    [event] = events(via="board")
    assert event.object_ids == [str(escalation.pk)] and event.actor_user_id == staff_a.pk

    monkeypatch.setattr(AuditEventQuerySet, "bulk_create", lambda *a, **k: (_ for _ in ()).throw(DatabaseError()))
    response = logged_in(staff_a).get("/board/")
    assert response.status_code == 503 and str(escalation.pk) not in response.content.decode()


def test_clinic_admins_browse_only_their_clinics_trail_read_only(call_a, org_b, admin_a, admin_b, staff_a):
    call_b = make_call(org_b)
    api(staff_a).get(f"/api/calls/{call_a.pk}")
    api(admin_b).get(f"/api/calls/{call_b.pk}")
    changelist = reverse("admin:calls_auditevent_changelist")

    response = logged_in(admin_a).get(changelist, {"action__exact": "view"})

    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert [row.object_id for row in shown] == [str(call_a.pk)]
    assert all(row.organization_id == call_a.organization_id for row in response.context["cl"].queryset)
    row = AuditEvent.objects.filter(organization_id=org_b.pk).first()
    assert row is not None
    assert logged_in(admin_a).get(reverse("admin:calls_auditevent_change", args=[row.pk])).status_code in (302, 404)
    own = AuditEvent.objects.filter(organization_id=call_a.organization_id).first()
    assert own is not None
    assert logged_in(admin_a).get(reverse("admin:calls_auditevent_change", args=[own.pk])).status_code == 200
    # Read-only for everyone: no add, no delete, no bulk actions; staff do not see colleagues' access at all.
    assert logged_in(admin_a).get(reverse("admin:calls_auditevent_add")).status_code == 403
    assert (
        logged_in(admin_a).post(reverse("admin:calls_auditevent_delete", args=[own.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=own.pk).exists()
    assert logged_in(staff_a).get(changelist).status_code == 403


def test_the_trail_filters_by_actor_and_date(call_a, admin_a, staff_a):
    api(staff_a).get(f"/api/calls/{call_a.pk}")
    client = logged_in(admin_a)
    changelist = reverse("admin:calls_auditevent_changelist")

    by_sam = client.get(changelist, {"actor": "user:sam"}).context["cl"].queryset
    by_caller = client.get(changelist, {"actor": "service:system"}).context["cl"].queryset
    day = call_a.started_at.date()
    today = client.get(changelist, {"at__year": day.year, "at__month": day.month, "at__day": day.day})

    assert {row.actor_user_id for row in by_sam} == {staff_a.pk}
    assert all(row.actor_service == "system" for row in by_caller)
    assert today.status_code == 200 and today.context["cl"].queryset.exists()


# --- Board pushes ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_board_pushes_are_recorded_for_the_socket_user():
    def setup():
        clinic = make_org(f"clinic-{uuid.uuid4().hex[:6]}")
        user = make_user(f"u{uuid.uuid4().hex[:6]}", clinic, Membership.Role.STAFF)
        escalation, _ = escalation_create(call=make_call(clinic), level="urgent", source="keyword", reason="bleeding")
        client = Client()
        client.force_login(user)
        return clinic, user, escalation, client.cookies["sessionid"].value

    from voiceagent.asgi import application

    clinic, user, escalation, cookie = await database_sync_to_async(setup)()
    headers = [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={cookie}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/board/", headers=headers)
    try:
        connected, _ = await communicator.connect()
        assert connected
        snapshot = await communicator.receive_json_from(timeout=3)
        assert [item["id"] for item in snapshot["escalations"]] == [str(escalation.pk)]
    finally:
        await communicator.disconnect()

    rows = await database_sync_to_async(events)(action="push")
    # The snapshot; with Redis the escalation's own live push may also land after the socket joined.
    snapshot_rows = [row for row in rows if row.details.get("event") == "snapshot"]
    assert len(snapshot_rows) == 1 and len(rows) <= 2
    assert all(row.actor_user_id == user.pk and row.organization_id == clinic.pk for row in rows)
    assert all(row.object_id == str(escalation.pk) and row.via == "board" for row in rows)
