"""Staff escalation API: escalate / de-escalate a call, list, acknowledge and resolve, scoped by clinic."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call, Escalation, Notification
from calls.services import escalation_create
from conftest import make_call, make_user, token_for

pytestmark = pytest.mark.django_db


def api(user) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(user)}"})


def post(client: Client, path: str, body: dict | None = None):
    return client.post(path, body if body is not None else {}, content_type="application/json")


def _open(call: Call, level: str = "emergency", reason: str = "chest_pain") -> Escalation:
    return escalation_create(call=call, level=level, source="keyword", reason=reason)[0]


class TestStaffEscalate:
    def test_staff_escalate_a_call_and_who_and_when_are_recorded(self, org_a, staff_a):
        call = make_call(org_a)
        before = timezone.now()
        response = post(api(staff_a), f"/api/calls/{call.pk}/escalate", {"level": "urgent", "reason": "callback"})
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["level"], body["source"], body["status"], body["call_id"]) == (
            "urgent",
            "staff",
            "open",
            str(call.pk),
        )
        call.refresh_from_db()
        assert call.escalated and call.escalation_level == "urgent"
        [action] = call.metadata["staff_actions"]
        assert (action["action"], action["user_id"], action["username"], action["level"]) == (
            "escalate",
            staff_a.pk,
            "sam",
            "urgent",
        )
        assert action["at"] >= before.isoformat()[:19]
        assert Notification.objects.filter(escalation_id=body["id"], channel="board").exists()

    def test_escalating_again_at_the_same_level_returns_the_open_one(self, org_a, staff_a):
        call = make_call(org_a)
        first = post(api(staff_a), f"/api/calls/{call.pk}/escalate/", {"level": "human"})
        again = post(api(staff_a), f"/api/calls/{call.pk}/escalate/", {"level": "human"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert call.escalations.count() == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "level"),
            ({"level": "uncertain"}, "level"),
            ({"level": "panic"}, "level"),
            ({"level": "urgent", "reason": "x" * 301}, "reason"),
            ([1, 2], "non_field_errors"),
        ],
    )
    def test_bad_input_is_a_400_with_the_field_named(self, org_a, staff_a, body, field):
        call = make_call(org_a)
        response = post(api(staff_a), f"/api/calls/{call.pk}/escalate", body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "validation_error" and field in error["fields"]
        assert not call.escalations.exists()

    def test_malformed_json_is_a_400(self, org_a, staff_a):
        call = make_call(org_a)
        response = api(staff_a).post(f"/api/calls/{call.pk}/escalate", "{nope", content_type="application/json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


class TestDeescalate:
    def test_deescalating_resolves_the_open_escalations_and_clears_the_flag(self, org_a, staff_a):
        call = make_call(org_a)
        emergency, human = _open(call), _open(call, "human", "human_request")
        response = post(api(staff_a), f"/api/calls/{call.pk}/deescalate", {"note": "wrong number, no emergency"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["escalated"] is False and body["escalation_level"] == ""
        assert {item["id"] for item in body["resolved"]} == {str(e.pk) for e in call.escalations.all()}
        call.refresh_from_db()
        assert not call.escalated and call.escalation_level == ""
        for escalation in (emergency, human):
            escalation.refresh_from_db()
            assert escalation.status == "resolved" and escalation.resolved_by == staff_a
            assert escalation.resolution_note == "wrong number, no emergency"
        assert call.metadata["staff_actions"][-1]["action"] == "deescalate"

    def test_deescalating_twice_changes_nothing_more(self, org_a, staff_a):
        call = make_call(org_a)
        _open(call)
        post(api(staff_a), f"/api/calls/{call.pk}/deescalate/")
        second = post(api(staff_a), f"/api/calls/{call.pk}/deescalate/")
        assert second.status_code == 200 and second.json()["resolved"] == []

    def test_a_new_trigger_after_deescalation_escalates_again(self, org_a, staff_a):
        call = make_call(org_a)
        _open(call)
        post(api(staff_a), f"/api/calls/{call.pk}/deescalate")
        _escalation, created = escalation_create(call=call, level="emergency", source="keyword")
        call.refresh_from_db()
        assert created and call.escalated and call.escalation_level == "emergency"


class TestListAcknowledgeResolve:
    def test_the_list_shows_my_clinics_open_escalations_newest_first(self, org_a, org_b, staff_a):
        older, newer = _open(make_call(org_a)), _open(make_call(org_a), "urgent", "bleeding")
        _open(make_call(org_b))
        acknowledged = _open(make_call(org_a), "human")
        post(api(staff_a), f"/api/escalations/{acknowledged.pk}/acknowledge")
        response = api(staff_a).get("/api/escalations?status=open")
        assert response.status_code == 200
        assert [item["id"] for item in response.json()["results"]] == [str(newer.pk), str(older.pk)]

    def test_the_list_filters_by_level_and_paginates_with_a_cursor(self, org_a, staff_a):
        made = [_open(make_call(org_a), "urgent") for _ in range(3)]
        _open(make_call(org_a), "human")
        first = api(staff_a).get("/api/escalations", {"level": "urgent", "page_size": "2"}).json()
        assert len(first["results"]) == 2 and first["next"]
        second = api(staff_a).get(first["next"]).json()
        ids = [item["id"] for item in first["results"] + second["results"]]
        assert ids == [str(e.pk) for e in reversed(made)]

    @pytest.mark.parametrize(
        "query",
        ["status=closed", "level=severe", "page_size=0", "page_size=101", "organization=nope", "cursor=garbage"],
    )
    def test_bad_filters_are_400s(self, staff_a, query):
        response = api(staff_a).get(f"/api/escalations?{query}")
        assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"

    def test_the_list_runs_a_fixed_number_of_queries(self, org_a, staff_a, django_assert_max_num_queries):
        for _ in range(5):
            escalation = _open(make_call(org_a))
            post(api(staff_a), f"/api/escalations/{escalation.pk}/acknowledge")
        client = api(staff_a)
        with django_assert_max_num_queries(4):
            response = client.get("/api/escalations")
        assert len(response.json()["results"]) == 5

    def test_acknowledge_records_who_and_when_and_is_idempotent(self, org_a, staff_a, admin_a):
        escalation = _open(make_call(org_a))
        first = post(api(staff_a), f"/api/escalations/{escalation.pk}/acknowledge")
        again = post(api(admin_a), f"/api/escalations/{escalation.pk}/acknowledge/")
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.json()["acknowledged_by"] == {"id": staff_a.pk, "username": "sam"}
        assert again.json()["acknowledged_by"]["username"] == "sam"  # the first acknowledger stays
        assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
        escalation.refresh_from_db()
        assert escalation.status == "acknowledged" and escalation.acknowledged_by == staff_a

    def test_resolve_records_who_when_and_the_note(self, org_a, staff_a):
        escalation = _open(make_call(org_a))
        response = post(api(staff_a), f"/api/escalations/{escalation.pk}/resolve", {"note": "called 911"})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "resolved" and body["resolution_note"] == "called 911"
        assert body["resolved_by"]["username"] == "sam" and body["resolved_at"]
        assert body["acknowledged_by"]["username"] == "sam"  # resolving an unacknowledged one acknowledges it too

    def test_a_note_over_the_limit_is_a_400(self, org_a, staff_a):
        escalation = _open(make_call(org_a))
        response = post(api(staff_a), f"/api/escalations/{escalation.pk}/resolve", {"note": "x" * 2001})
        assert response.status_code == 400 and "note" in response.json()["error"]["fields"]
        escalation.refresh_from_db()
        assert escalation.status == "open"

    def test_the_session_login_works_with_a_csrf_token(self, org_a, staff_a, settings):
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        escalation = _open(make_call(org_a))
        client = Client(enforce_csrf_checks=True)
        client.force_login(staff_a)
        refused = post(client, f"/api/escalations/{escalation.pk}/acknowledge")
        assert refused.status_code == 403
        page = client.get("/board/")
        token = page.context["csrf_token"]
        accepted = client.post(
            f"/api/escalations/{escalation.pk}/acknowledge",
            "{}",
            content_type="application/json",
            headers={"X-CSRFToken": str(token)},
        )
        assert accepted.status_code == 200


class TestTenancy:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("post", "/api/calls/{call}/escalate", {"level": "urgent"}),
            ("post", "/api/calls/{call}/deescalate", {}),
            ("post", "/api/escalations/{escalation}/acknowledge", {}),
            ("post", "/api/escalations/{escalation}/resolve", {"note": "x"}),
            ("get", "/api/escalations?organization={org}", None),
        ],
    )
    @pytest.mark.parametrize("outsider", ["staff_b", "admin_b", "nobody"])
    def test_another_clinics_ids_answer_404_and_change_nothing(self, request, org_a, method, path, body, outsider):
        user = request.getfixturevalue(outsider) if outsider != "nobody" else make_user("nobody")
        call = make_call(org_a)
        escalation = _open(call)
        url = path.format(call=call.pk, escalation=escalation.pk, org=org_a.pk)
        client = api(user)
        response = post(client, url, body) if method == "post" else client.get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        escalation.refresh_from_db()
        call.refresh_from_db()
        assert escalation.status == "open" and call.escalated and call.escalations.count() == 1

    def test_unknown_ids_answer_404(self, staff_a):
        for path in (f"/api/calls/{uuid.uuid4()}/escalate", f"/api/escalations/{uuid.uuid4()}/acknowledge"):
            assert post(api(staff_a), path, {"level": "urgent"}).status_code == 404

    def test_an_outsider_lists_nothing_of_clinic_a(self, org_a, staff_b):
        _open(make_call(org_a))
        assert api(staff_b).get("/api/escalations").json()["results"] == []

    def test_the_operator_sees_every_clinic(self, org_a, org_b, operator):
        _open(make_call(org_a)), _open(make_call(org_b))
        assert len(api(operator).get("/api/escalations").json()["results"]) == 2

    def test_anonymous_requests_are_401(self, org_a):
        escalation = _open(make_call(org_a))
        response = Client().post(f"/api/escalations/{escalation.pk}/acknowledge")
        assert response.status_code == 401
        assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


@pytest.mark.django_db
def test_a_staff_escalation_records_who_raised_it(org_a, staff_a):
    from calls.models import Escalation
    from calls.services import call_escalate_by_staff
    from conftest import make_call

    escalation, created = call_escalate_by_staff(call=make_call(org_a), user=staff_a, level="urgent", reason="x")
    assert created and Escalation.objects.get(pk=escalation.pk).created_by == staff_a
