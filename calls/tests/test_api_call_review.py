"""Staff side of the call API: listing, filtering, paginating and reading calls, scoped to the user's clinics."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import Call, TranscriptSegment
from calls.services import call_end, escalation_acknowledge, escalation_create, intake_store, transcript_segment_append
from conftest import logged_in, make_call, make_org, make_user, token_for
from organizations.models import Membership

LIST = "/api/calls"


def detail_url(call: Call) -> str:
    return f"/api/calls/{call.pk}"


def api(user) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(user)}"})


def ended_call(org, *, minutes_ago: int = 10, length: int = 60, **kwargs) -> Call:
    call = make_call(org, minutes_ago=minutes_ago, **kwargs)
    return call_end(call=call, ended_at=call.started_at + dt.timedelta(seconds=length))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


# --- List ---------------------------------------------------------------------------------------------------------


def test_staff_list_their_clinics_calls_newest_first(org_a, org_b, staff_a):
    old = make_call(org_a, minutes_ago=30, caller_phone="+14155550001", caller_name="Ana Diaz")
    new = make_call(org_a, minutes_ago=5)
    make_call(org_b, minutes_ago=1)
    transcript_segment_append(call=old, speaker="caller", text="hello")
    transcript_segment_append(call=old, speaker="agent", text="hi")

    response = api(staff_a).get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["results"]] == [str(new.pk), str(old.pk)]
    row = body["results"][1]
    assert row["organization"] == str(org_a.pk)
    assert row["transcript_segments"] == 2
    assert row["caller_phone"] == "+14155550001"
    assert row["caller_name"] == "Ana Diaz" and body["results"][0]["caller_name"] == ""
    assert row["status"] == "in_progress" and row["ended_at"] is None and row["duration_seconds"] is None
    assert row["intake_completed"] is False and row["reviewed"] is False and row["escalated"] is False
    assert body["next"] is None and body["previous"] is None


def test_a_session_login_works_as_well_as_a_token(org_a, admin_a):
    make_call(org_a)
    response = logged_in(admin_a).get(LIST + "/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_the_list_needs_authentication(org_a):
    assert_error(Client().get(LIST), 401, "not_authenticated")
    assert_error(Client(headers={"Authorization": "Token nope"}).get(LIST), 401, "authentication_failed")


def test_a_user_of_several_clinics_must_say_which(org_a, org_b, staff_a):
    Membership.objects.create(user=staff_a, organization=org_b, role=Membership.Role.STAFF)
    make_call(org_b)

    error = assert_error(api(staff_a).get(LIST), 400, "organization_required")
    assert "organization" in error["fields"]

    response = api(staff_a).get(LIST, {"organization": str(org_b.pk)})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_another_clinics_list_answers_404(request, org_a, persona):
    make_call(org_a)
    user = request.getfixturevalue(persona)
    response = api(user).get(LIST, {"organization": str(org_a.pk)})
    assert_error(response, 404, "not_found")
    assert str(org_a.pk) not in response.content.decode()


def test_filters_narrow_the_list(org_a, staff_a):
    now = timezone.now()
    escalated = make_call(org_a, minutes_ago=50, caller_phone="+14155550111")
    escalation_create(call=escalated, level="urgent", source="keyword", reason="chest pain")
    phone = ended_call(org_a, minutes_ago=40, channel=Call.Channel.PHONE)
    talked = make_call(org_a, minutes_ago=30)
    transcript_segment_append(call=talked, speaker="caller", text="I need a FLU shot")
    transcript_segment_append(call=talked, speaker="agent", text="flu shots are on Fridays")
    urgent = make_call(org_a, minutes_ago=20)
    intake_store(call=urgent, data={"urgency": "urgent"})
    client = api(staff_a)

    def ids(**params) -> list[str]:
        response = client.get(LIST, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(escalated="true") == [str(escalated.pk)]
    assert str(escalated.pk) not in ids(escalated="false")
    assert ids(channel="phone") == [str(phone.pk)]
    assert ids(status="completed") == [str(phone.pk)]
    # The intake's urgency, raised by an escalation: the urgent escalation makes its call urgent too.
    assert ids(urgency="urgent") == [str(urgent.pk), str(escalated.pk)]
    assert ids(q="flu") == [str(talked.pk)]  # two matching segments, one row
    assert ids(q="555011") == [str(escalated.pk)]
    after = (now - dt.timedelta(minutes=35)).isoformat()
    before = (now - dt.timedelta(minutes=25)).isoformat()
    assert ids(started_after=after, started_before=before) == [str(talked.pk)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "dancing"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"escalated": "maybe"}, "escalated"),
        ({"urgency": "whenever"}, "urgency"),
        ({"started_after": "last tuesday"}, "started_after"),
        ({"started_after": "0001-01-01T00:00:00+14:00"}, "started_after"),  # no UTC equivalent
        ({"started_before": "9999-12-31T23:59:59-14:00"}, "started_before"),
        ({"ordering": "caller_phone"}, "ordering"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"organization": "not-a-uuid"}, "organization"),
        ({"q": "nul\x00"}, "q"),
        ({"cursor": "garbage"}, "cursor"),
        # An empty value is no value the schema allows; django-filter would have dropped the filter silently.
        ({"channel": ""}, "channel"),
        ({"started_after": ""}, "started_after"),
        ({"organization": ""}, "organization"),
        ({"page_size": ""}, "page_size"),
    ],
)
def test_invalid_list_parameters_answer_400_naming_the_parameter(org_a, staff_a, params, field):
    # NUL anywhere in the query string is refused before the view (invalid_text), naming the parameter too.
    code = "invalid_text" if any("\x00" in str(value) for value in params.values()) else "validation_error"
    error = assert_error(api(staff_a).get(LIST, params), 400, code)
    assert field in error["fields"]


def test_an_empty_search_is_no_search(org_a, staff_a):
    make_call(org_a)
    response = api(staff_a).get(LIST, {"q": ""})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_a_forged_cursor_position_answers_400_not_500(org_a, staff_a):
    import base64

    forged = base64.b64encode(b"p=not-a-date").decode()
    assert_error(api(staff_a).get(LIST, {"cursor": forged}), 400, "validation_error")
    forged = base64.b64encode(b"p=2026-01-01T00:00:00%2B00:00").decode()
    assert_error(api(staff_a).get(LIST, {"cursor": forged, "ordering": "duration"}), 400, "validation_error")


@pytest.mark.parametrize("ordering", ["-started_at", "started_at", "duration", "-duration"])
def test_cursor_pages_cover_every_call_exactly_once_in_order(org_a, staff_a, ordering):
    calls = [ended_call(org_a, minutes_ago=60 - n, length=(n * 7) % 5) for n in range(7)]
    calls.append(make_call(org_a, minutes_ago=1))  # live: no duration yet
    client = api(staff_a)

    seen: list[dict] = []
    response = client.get(LIST, {"ordering": ordering, "page_size": 3})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) <= 3
        seen.extend(body["results"])
        if not body["next"]:
            break
        response = client.get(body["next"])

    assert sorted(row["id"] for row in seen) == sorted(str(call.pk) for call in calls)
    key = "started_at" if "started_at" in ordering else "duration_seconds"
    values = [(-1 if row[key] is None else row[key]) for row in seen]
    assert values == sorted(values, reverse=ordering.startswith("-"))


def test_the_page_size_defaults_to_25(org_a, staff_a):
    for n in range(26):
        make_call(org_a, minutes_ago=n + 1)
    body = api(staff_a).get(LIST).json()
    assert len(body["results"]) == 25 and body["next"]


def test_the_number_of_list_queries_does_not_depend_on_the_page_size(org_a, staff_a):
    for n in range(20):
        call = make_call(org_a, minutes_ago=n + 1)
        transcript_segment_append(call=call, speaker="caller", text="hello")
        escalation_create(call=call, level="human", source="keyword")
    client = api(staff_a)
    counts = []
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST, {"page_size": size, "q": "hello", "escalated": "true"})
        assert len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- Detail -------------------------------------------------------------------------------------------------------


def test_the_detail_shows_transcript_intake_and_escalations(org_a, staff_a, admin_a):
    call = make_call(org_a, caller_phone="+14155550123", caller_name="Ana Diaz")
    transcript_segment_append(call=call, speaker="agent", text="Clinic A, hello.")
    transcript_segment_append(call=call, speaker="caller", text="My chest hurts.")
    escalation, _ = escalation_create(call=call, level="emergency", source="keyword", evidence="My chest hurts.")
    escalation_acknowledge(escalation=escalation, user=admin_a)
    escalation_create(call=call, level="human", source="agent_tool", reason="asked for a person")
    intake_store(call=call, data={"patient_name": "Ana Diaz", "urgency": "emergency"})

    response = api(staff_a).get(detail_url(call))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(call.pk)
    assert (body["caller_name"], body["caller_phone"]) == ("Ana Diaz", "+14155550123")
    assert [(s["seq"], s["speaker"], s["text"]) for s in body["transcript"]] == [
        (1, "agent", "Clinic A, hello."),
        (2, "caller", "My chest hurts."),
    ]
    assert body["intake"] == {
        "data": {"patient_name": "Ana Diaz", "urgency": "emergency"},
        "urgency": "emergency",
        "completed": False,
        "forwarded": False,
    }
    assert [(e["level"], e["status"], e["acknowledged_by"]) for e in body["escalations"]] == [
        ("emergency", "acknowledged", "alice"),
        ("human", "open", None),
    ]
    assert body["escalated"] is True and body["escalation_level"] == "emergency"
    assert body["transcript_segments"] == 2
    assert "token_hash" not in body and "metadata" not in body


def test_a_call_without_intake_shows_null(org_a, staff_a):
    call = make_call(org_a)
    assert api(staff_a).get(detail_url(call) + "/").json()["intake"] is None


def test_the_detail_query_count_does_not_grow_with_the_transcript(org_a, staff_a, admin_a):
    small, big = make_call(org_a), make_call(org_a)
    transcript_segment_append(call=small, speaker="caller", text="one")
    for n in range(15):
        transcript_segment_append(call=big, speaker="caller", text=f"line {n}")
    for level in ("human", "urgent", "emergency"):
        escalation, _ = escalation_create(call=big, level=level, source="keyword")
        escalation_acknowledge(escalation=escalation, user=admin_a)
    client = api(staff_a)
    counts = []
    for call in (small, big):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(detail_url(call)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_detail_needs_authentication(org_a):
    call = make_call(org_a)
    assert_error(Client().get(detail_url(call)), 401, "not_authenticated")


def test_an_unknown_call_answers_404(org_a, staff_a):
    assert_error(api(staff_a).get("/api/calls/00000000-0000-0000-0000-000000000000"), 404, "not_found")


# --- Tenancy matrix: clinic B's people against every clinic A call endpoint -----------------------------------------


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_clinic_b_gets_404_for_every_clinic_a_call_and_changes_nothing(request, org_a, persona):
    user = request.getfixturevalue(persona)
    call = make_call(org_a, caller_phone="+14155550999")
    transcript_segment_append(call=call, speaker="caller", text="secret symptoms")
    for client in (api(user), logged_in(user)):
        detail = client.get(detail_url(call))
        listing = client.get(LIST, {"organization": str(org_a.pk)})
        own_list = client.get(LIST)
        end = client.post("/api/call/end", data=json.dumps({"call_id": str(call.pk)}), content_type="application/json")
        for response in (detail, listing, end):
            assert_error(response, 404, "not_found")
            assert "secret symptoms" not in response.content.decode()
            assert "+14155550999" not in response.content.decode()
        assert own_list.status_code == 200 and own_list.json()["results"] == []
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS
    assert TranscriptSegment.objects.filter(call=call).count() == 1


def test_an_operator_sees_any_clinics_calls_when_naming_it(org_a, org_b, operator):
    call = make_call(org_b)
    response = api(operator).get(LIST, {"organization": str(org_b.pk)})
    assert [row["id"] for row in response.json()["results"]] == [str(call.pk)]
    assert api(operator).get(detail_url(call)).status_code == 200


def test_a_user_without_any_clinic_sees_nothing(org_a):
    make_call(org_a)
    loner = make_user("loner")
    assert_error(api(loner).get(LIST), 404, "not_found")
    assert make_org("clinic-c")  # still nothing once other clinics exist
    assert_error(api(loner).get(LIST), 404, "not_found")


def test_a_filter_time_with_an_offset_postgresql_cannot_hold_is_answered_not_a_500(org_a, staff_a):
    response = logged_in(staff_a).get("/api/calls", {"started_after": "1664-10-14T20:52:49-22:08"})
    assert response.status_code in (200, 400), response.content
