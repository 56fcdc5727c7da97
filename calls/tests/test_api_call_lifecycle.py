"""Caller side of the API: starting and ending calls with the publishable key and the call token, CORS, throttling,
and the error shape for malformed requests."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from calls.models import Call, Escalation, Intake, TranscriptSegment
from calls.services import call_start
from conftest import logged_in, make_call, token_for

START = "/api/call/start"
END = "/api/call/end"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    cache.clear()  # throttle windows are counted in the cache; each test starts from zero
    yield
    cache.clear()


def post(client: Client, url: str, body: object, **headers: str):
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def start(org, client: Client | None = None, **body):
    body.setdefault("channel", "web")
    body.setdefault("caller", {"name": "Ana Diaz", "phone": "(415) 555-0123"})
    return post(client or Client(), START, body, **{"X-Org-Key": org.publishable_key})


def started_call(org) -> tuple[Call, str]:
    return call_start(organization=org, channel=Call.Channel.WEB)


def end_as_caller(org, call: Call, token: str, **body):
    body.setdefault("call_id", str(call.pk))
    return post(Client(), END, body, **{"X-Org-Key": org.publishable_key, "X-Call-Token": token})


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# --- Starting a call --------------------------------------------------------------------------------------------


def test_a_website_starts_a_call_with_the_clinics_publishable_key(org_a):
    response = start(org_a, metadata={"page": "/book"})

    assert response.status_code == 201
    body = response.json()
    call = Call.objects.get(pk=body["call_id"])
    assert call.organization == org_a
    assert call.status == body["status"] == "in_progress"
    assert call.caller_phone == "+14155550123"  # normalised to E.164
    assert call.metadata == {"client": {"page": "/book"}}  # the widget's own namespace
    assert body["organization"] == {"id": str(org_a.pk), "name": org_a.name}
    assert body["call_token"].startswith("ct_") and call.token_matches(body["call_token"])
    assert body["started_at"]


def test_an_empty_body_starts_an_anonymous_web_call(org_a):
    response = post(Client(), START, {}, **{"X-Org-Key": org_a.publishable_key})

    assert response.status_code == 201, response.content
    call = Call.objects.get(pk=response.json()["call_id"])
    assert (call.channel, call.status, call.caller_name, call.caller_phone) == ("web", "in_progress", "", "")


def test_the_trailing_slash_is_optional(org_a):
    response = post(Client(), START + "/", {"channel": "web", "caller": {}}, **{"X-Org-Key": org_a.publishable_key})
    assert response.status_code == 201


def test_starting_a_call_without_a_key_is_refused_with_401(org_a):
    response = post(Client(), START, {"channel": "web", "caller": {}})
    assert_error(response, 401, "missing_org_key")
    assert Call.objects.count() == 0


@pytest.mark.parametrize("key", ["pk_unknownunknownunknown", "garbage", "pk_" + "x" * 300])
def test_starting_a_call_with_an_unknown_key_is_refused_with_401(org_a, key):
    response = post(Client(), START, {"channel": "web", "caller": {}}, **{"X-Org-Key": key})
    assert_error(response, 401, "invalid_org_key")
    assert Call.objects.count() == 0


def test_a_foreign_origin_cannot_use_the_clinics_key(org_a):
    response = post(
        Client(),
        START,
        {"channel": "web", "caller": {}},
        **{"X-Org-Key": org_a.publishable_key, "Origin": "https://evil.example"},
    )
    assert_error(response, 403, "origin_not_allowed")
    assert Call.objects.count() == 0


def test_the_clinics_own_origin_may_start_a_call_and_read_the_answer(org_a):
    response = post(
        Client(),
        START,
        {"channel": "web", "caller": {}},
        **{"X-Org-Key": org_a.publishable_key, "Origin": "https://clinic-a.example"},
    )
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == "https://clinic-a.example"
    assert "Access-Control-Allow-Credentials" not in response


def test_another_clinics_origin_cannot_use_this_clinics_key(org_a, org_b):
    response = post(
        Client(),
        START,
        {"channel": "web", "caller": {}},
        **{"X-Org-Key": org_a.publishable_key, "Origin": "https://clinic-b.example"},
    )
    assert_error(response, 403, "origin_not_allowed")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "phone", "caller": {}}, "channel"),
        ({"channel": "web", "caller": {"phone": "not a phone"}}, "caller.phone"),
        ({"channel": "web", "caller": {"name": "x" * 201}}, "caller.name"),
        ({"channel": "web", "caller": {}, "metadata": []}, "metadata"),
        ({"channel": "web", "caller": {}, "metadata": {"k": "x" * 5000}}, "metadata"),
        ({"channel": 7, "caller": "Ana"}, "caller"),
    ],
)
def test_invalid_start_bodies_answer_400_naming_the_field(org_a, body, field):
    response = post(Client(), START, body, **{"X-Org-Key": org_a.publishable_key})
    error = assert_error(response, 400, "validation_error")
    assert field in error["fields"]
    assert Call.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "web", "caller": {"name": "nul\x00"}}, "caller.name"),
        ({"channel": "web", "caller": {}, "metadata": {"k": "v\x00"}}, "metadata.k"),
        ({"channel": "web", "caller": {}, "metadata": {"k": "\ud800"}}, "metadata.k"),
    ],
)
def test_text_a_database_cannot_store_answers_400_invalid_text_naming_the_field(org_a, body, field):
    response = post(Client(), START, body, **{"X-Org-Key": org_a.publishable_key})
    error = assert_error(response, 400, "invalid_text")
    assert field in error["fields"]
    assert Call.objects.count() == 0


def test_a_body_that_is_not_an_object_answers_400(org_a):
    response = post(Client(), START, ["web"], **{"X-Org-Key": org_a.publishable_key})
    error = assert_error(response, 400, "validation_error")
    assert "non_field_errors" in error["fields"]


# --- Malformed requests: one error shape, never a 500 -----------------------------------------------------------


def test_malformed_json_answers_400_invalid_json(org_a):
    response = Client().post(
        START, data="{not json", content_type="application/json", headers={"X-Org-Key": org_a.publishable_key}
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("raw", ['{"channel": NaN}', '{"a": 1e400}', b"\xff\xfe"])
def test_pathological_json_answers_400_not_500(org_a, raw):
    response = Client().post(
        START, data=raw, content_type="application/json", headers={"X-Org-Key": org_a.publishable_key}
    )
    assert_error(response, 400, "invalid_json")


def test_a_body_over_the_limit_answers_413(org_a, settings):
    settings.API_MAX_BODY_BYTES = 2048
    body: dict[str, Any] = {"channel": "web", "caller": {"name": "x" * 4000}}
    assert_error(start(org_a, **body), 413, "payload_too_large")
    assert Call.objects.count() == 0


def test_a_non_json_body_answers_415(org_a):
    response = Client().post(
        START,
        data="channel=web",
        content_type="application/x-www-form-urlencoded",
        headers={"X-Org-Key": org_a.publishable_key},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_a_wrong_method_answers_405(org_a):
    response = Client().get(START, headers={"X-Org-Key": org_a.publishable_key})
    assert_error(response, 405, "method_not_allowed")


def test_unknown_api_routes_answer_404_in_the_error_shape(db):
    for path in ("/api/nope", "/api/calls/not-a-uuid", "/api/org/config/clinic-a/extra"):
        response = Client().get(path)
        assert_error(response, 404, "not_found")
        assert response["Content-Type"] == "application/json"


# --- Ending a call ------------------------------------------------------------------------------------------------

INTAKE = {
    "patient_name": "Ana Diaz",
    "date_of_birth": "1984-07-12",
    "callback_number": "(415) 555-0123",
    "reason_for_call": "Checkup",
    "urgency": "routine",
}
TRANSCRIPT = [
    {"speaker": "agent", "text": "Clinic A, how can I help?", "item_id": "item_1"},
    {"speaker": "caller", "text": "A checkup, please.", "item_id": "item_2", "timestamp": "2026-03-02T14:05:15Z"},
]


def browser_reports_everything(org) -> None:
    """Agent lines and the intake from the caller side need the clinic's event-forwarding integration (issue 13:
    these tests sent them for any clinic before; the refusals are in realtime/tests/test_events_abuse.py)."""
    org.event_forwarding = True
    org.save(update_fields=["event_forwarding"])


def test_the_caller_ends_a_call_with_transcript_and_intake(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)

    response = end_as_caller(org_a, call, token, reason="caller_hangup", transcript=TRANSCRIPT, intake=INTAKE)

    assert response.status_code == 200, response.content
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED
    assert call.ended_at is not None and call.duration_seconds is not None
    assert call.urgency == "routine"
    body = response.json()
    assert body["status"] == "completed"
    assert [(s["seq"], s["speaker"], s["text"]) for s in body["transcript"]] == [
        (1, "agent", "Clinic A, how can I help?"),
        (2, "caller", "A checkup, please."),
    ]
    assert body["intake"]["data"]["callback_number"] == "+14155550123"
    assert body["intake"]["completed"] is True
    assert body["escalations"] == []


def test_caller_lines_sent_with_the_end_are_triaged_and_an_emergency_is_escalated(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)
    transcript = [
        {"speaker": "agent", "text": "Clinic A, how can I help?"},
        {"speaker": "caller", "text": "my husband just collapsed and he is not breathing", "item_id": "i1"},
    ]

    response = end_as_caller(org_a, call, token, reason="caller_hangup", transcript=transcript)

    assert response.status_code == 200, response.content
    [escalation] = response.json()["escalations"]
    assert (escalation["level"], escalation["source"]) == ("emergency", "keyword")
    call.refresh_from_db()
    assert call.escalated and call.status == Call.Status.COMPLETED
    assert list(call.segments.order_by("seq").values_list("speaker", flat=True)) == ["agent", "caller", "system"]
    assert Escalation.objects.get(call=call).notifications.exists()  # staff are alerted like for a live line


def test_an_invalid_intake_leaves_no_escalation_from_the_transcript_either(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)
    transcript = [{"speaker": "caller", "text": "she is having a seizure right now"}]

    response = end_as_caller(org_a, call, token, transcript=transcript, intake={**INTAKE, "callback_number": "x"})

    assert_error(response, 400, "validation_error")
    assert not Escalation.objects.filter(call=call).exists() and call.segments.count() == 0


def test_reason_error_marks_the_call_failed(org_a):
    call, token = started_call(org_a)
    response = end_as_caller(org_a, call, token, reason="error")
    assert response.status_code == 200
    call.refresh_from_db()
    assert call.status == Call.Status.FAILED


def test_the_transcript_is_merged_with_what_was_already_stored(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)
    TranscriptSegment.objects.create(
        call=call,
        seq=1,
        speaker="agent",
        text="Clinic A, how can I help?",
        item_id="item_1",
        occurred_at=call.started_at,
    )

    response = end_as_caller(org_a, call, token, transcript=[*TRANSCRIPT, TRANSCRIPT[1]])

    assert response.status_code == 200
    assert list(call.segments.order_by("seq").values_list("item_id", flat=True)) == ["item_1", "item_2"]


def test_ending_twice_with_the_same_body_answers_the_same_and_stores_nothing_twice(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)
    first = end_as_caller(org_a, call, token, transcript=TRANSCRIPT, intake=INTAKE)
    call.refresh_from_db()
    ended_at = call.ended_at

    second = end_as_caller(org_a, call, token, transcript=TRANSCRIPT, intake=INTAKE)

    assert second.status_code == 200
    assert second.json() == first.json()
    call.refresh_from_db()
    assert call.ended_at == ended_at
    assert call.segments.count() == 2


def test_ending_an_ended_call_changes_nothing(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)
    end_as_caller(org_a, call, token, reason="caller_hangup")

    response = end_as_caller(org_a, call, token, reason="error", transcript=TRANSCRIPT, intake={"bogus": "x"})

    assert response.status_code == 200
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED
    assert call.segments.count() == 0
    assert not Intake.objects.filter(call=call).exists()


def test_an_invalid_intake_answers_400_with_intake_field_paths_and_leaves_the_call_live(org_a):
    browser_reports_everything(org_a)
    call, token = started_call(org_a)

    response = end_as_caller(
        org_a, call, token, transcript=TRANSCRIPT, intake={**INTAKE, "callback_number": "call me", "shoe": "42"}
    )

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"intake.callback_number", "intake.shoe"}
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS
    assert call.segments.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"call_id": "nope"}, "call_id"),
        ({"reason": "timeout"}, "reason"),
        ({"transcript": [{"speaker": "doctor", "text": "hi"}]}, "transcript.0.speaker"),
        ({"transcript": [{"speaker": "caller"}]}, "transcript.0.text"),
        ({"transcript": [{"speaker": "caller", "text": "hi", "timestamp": "yesterday"}]}, "transcript.0.timestamp"),
        (
            {"transcript": [{"speaker": "caller", "text": "hi", "timestamp": "0001-01-01T00:00:00+14:00"}]},
            "transcript.0.timestamp",
        ),
        ({"transcript": "hello"}, "transcript"),
        ({"intake": ["x"]}, "intake"),
    ],
)
def test_invalid_end_bodies_answer_400_naming_the_field(org_a, body, field):
    call, token = started_call(org_a)
    error = assert_error(end_as_caller(org_a, call, token, **body), 400, "validation_error")
    assert field in error["fields"]
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS


def test_ending_without_a_call_token_is_refused_with_401(org_a):
    call, _token = started_call(org_a)
    response = post(Client(), END, {"call_id": str(call.pk)}, **{"X-Org-Key": org_a.publishable_key})
    assert_error(response, 401, "missing_call_token")
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS


def test_a_call_token_works_only_for_its_own_call(org_a):
    call, _token = started_call(org_a)
    _other, other_token = started_call(org_a)

    response = end_as_caller(org_a, call, other_token)

    assert_error(response, 401, "invalid_call_token")
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS


def test_a_clinics_key_cannot_end_another_clinics_call(org_a, org_b):
    call, token = started_call(org_a)
    response = post(
        Client(), END, {"call_id": str(call.pk)}, **{"X-Org-Key": org_b.publishable_key, "X-Call-Token": token}
    )
    assert_error(response, 404, "not_found")
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS


def test_ending_with_nothing_at_all_answers_401(org_a):
    call, _token = started_call(org_a)
    assert_error(post(Client(), END, {"call_id": str(call.pk)}), 401, "not_authenticated")


def test_staff_of_the_clinic_can_end_its_call(org_a, staff_a):
    call = make_call(org_a)
    response = Client().post(
        END,
        data=json.dumps({"call_id": str(call.pk), "reason": "agent_ended"}),
        content_type="application/json",
        headers={"Authorization": f"Token {token_for(staff_a)}"},
    )
    assert response.status_code == 200
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED and call.end_reason == "agent_ended"


@pytest.mark.parametrize("key", ["", " ", "garbage"])
def test_a_broken_clinic_key_beside_a_valid_staff_token_is_refused_not_skipped(org_a, staff_a, key):
    """A request carrying a key that names no clinic is refused, even when other credentials would pass."""
    call = make_call(org_a)
    response = Client().post(
        END,
        data=json.dumps({"call_id": str(call.pk)}),
        content_type="application/json",
        headers={"Authorization": f"Token {token_for(staff_a)}", "X-Org-Key": key},
    )
    assert_error(response, 401, "invalid_org_key")
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS


def test_a_blank_clinic_key_does_not_start_a_call(org_a):
    assert_error(post(Client(), START, {}, **{"X-Org-Key": "  "}), 401, "invalid_org_key")
    assert Call.objects.count() == 0


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_another_clinics_staff_cannot_end_a_call(request, org_a, persona):
    user = request.getfixturevalue(persona)
    call = make_call(org_a)
    response = post(logged_in(user), END, {"call_id": str(call.pk), "transcript": TRANSCRIPT})
    error = assert_error(response, 404, "not_found")
    assert str(call.pk) not in json.dumps(error)
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and call.segments.count() == 0


def test_the_call_token_and_key_never_appear_in_logs(org_a, caplog):
    caplog.set_level(logging.DEBUG)
    response = start(org_a)
    token = response.json()["call_token"]
    end_as_caller(org_a, Call.objects.get(pk=response.json()["call_id"]), token)
    end_as_caller(org_a, Call.objects.get(pk=response.json()["call_id"]), "ct_wrongwrongwrong")
    assert token not in caplog.text
    assert org_a.publishable_key not in caplog.text


# --- CORS -----------------------------------------------------------------------------------------------------------


def preflight(path: str, origin: str):
    return Client().options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-org-key",
        },
    )


def test_a_preflight_from_a_clinics_origin_is_allowed_without_credentials(org_a):
    response = preflight(START, "https://clinic-a.example")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://clinic-a.example"
    assert "X-Org-Key" in response["Access-Control-Allow-Headers"]
    assert "X-Call-Token" in response["Access-Control-Allow-Headers"]
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response
    assert "Origin" in response["Vary"]


def test_a_preflight_from_a_foreign_origin_gets_no_cors_grant(org_a):
    response = preflight(END, "https://evil.example")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert response.json()["error"]["code"] == "origin_not_allowed"


def test_staff_endpoints_get_no_cors_headers(org_a):
    response = preflight("/api/calls", "https://clinic-a.example")
    assert "Access-Control-Allow-Origin" not in response


# --- Throttling ---------------------------------------------------------------------------------------------------


def test_callers_are_throttled_per_ip_with_retry_after(org_a, settings):
    settings.CALLER_THROTTLE_RATES = {"caller_ip": "3/min", "caller_org": "100/min"}
    statuses = [start(org_a).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    response = start(org_a)
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Call.objects.count() == 3


def test_bad_keys_count_against_the_ip_limit_too(org_a, settings):
    settings.CALLER_THROTTLE_RATES = {"caller_ip": "2/min", "caller_org": "100/min"}
    for _ in range(2):
        post(Client(), START, {}, **{"X-Org-Key": "pk_guessguessguess"})
    assert_error(start(org_a), 429, "throttled")


def test_callers_are_throttled_per_clinic_across_ips(org_a, org_b, settings):
    settings.CALLER_THROTTLE_RATES = {"caller_ip": "100/min", "caller_org": "2/min"}
    clients = [Client(REMOTE_ADDR=f"10.0.0.{n}") for n in range(3)]
    assert [start(org_a, client).status_code for client in clients] == [201, 201, 429]
    assert start(org_b, clients[0]).status_code == 201  # another clinic has its own budget
