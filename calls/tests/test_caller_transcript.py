"""GET /api/calls/{id}/transcript: the caller's own page reads what the server stored for its call."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import AuditEvent, Call
from calls.services import call_start, transcript_segment_append

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_call(org_a):
    started = timezone.now() - dt.timedelta(minutes=10)
    call, token = call_start(organization=org_a, channel=Call.Channel.WEB, started_at=started)
    transcript_segment_append(call=call, speaker="agent", text="Clinic A, how can I help?", item_id="i1")
    transcript_segment_append(call=call, speaker="caller", text="I'd like a check-up.", item_id="i2")
    transcript_segment_append(call=call, speaker="system", text="triage: routine (rules)")
    transcript_segment_append(call=call, speaker="agent", text="Of course. Your name?", item_id="i3")
    return call, token


def read(org, call, token, query="", **headers):
    return Client().get(
        f"/api/calls/{call.pk}/transcript{query}",
        headers={"X-Org-Key": org.publishable_key, "X-Call-Token": token, **headers},
    )


def test_the_caller_reads_its_calls_lines_in_order_without_the_staff_notes(org_a, live_call):
    call, token = live_call
    response = read(org_a, call, token)
    assert response.status_code == 200
    body = response.json()
    assert body["call_status"] == "in_progress"
    assert [(s["speaker"], s["text"]) for s in body["segments"]] == [
        ("agent", "Clinic A, how can I help?"),
        ("caller", "I'd like a check-up."),
        ("agent", "Of course. Your name?"),
    ]
    assert "triage" not in response.content.decode()


def test_polling_from_the_last_seq_returns_only_new_lines_and_audits_only_reads_that_return_lines(org_a, live_call):
    call, token = live_call
    last = read(org_a, call, token).json()["segments"][-1]["seq"]
    audited = AuditEvent.objects.filter(object_type="call", object_id=str(call.pk), action="view").count()
    assert audited == 1  # the read that returned patient data
    assert read(org_a, call, token, f"?after={last}").json()["segments"] == []
    transcript_segment_append(call=call, speaker="caller", text="Ana Diaz.", item_id="i4")
    assert [s["text"] for s in read(org_a, call, token, f"?after={last}").json()["segments"]] == ["Ana Diaz."]
    event = AuditEvent.objects.filter(object_id=str(call.pk), action="view").latest("id")
    assert (event.actor_service, event.details) == ("web-caller", {"part": "transcript"})
    assert AuditEvent.objects.filter(object_id=str(call.pk), action="view").count() == 2


def test_another_calls_token_is_401_and_another_clinics_key_is_404(org_a, org_b, live_call):
    call, _token = live_call
    _other, other_token = call_start(organization=org_a, channel=Call.Channel.WEB)
    assert read(org_a, call, other_token).status_code == 401
    _foreign, foreign_token = call_start(organization=org_b, channel=Call.Channel.WEB)
    response = read(org_b, call, foreign_token)
    assert response.status_code == 404 and "check-up" not in response.content.decode()
    assert Client().get(f"/api/calls/{call.pk}/transcript").status_code == 401


def test_the_last_lines_stay_readable_shortly_after_the_end_and_then_no_more(org_a, live_call):
    call, token = live_call
    Call.objects.filter(pk=call.pk).update(status="completed", ended_at=timezone.now() - dt.timedelta(minutes=1))
    body = read(org_a, call, token).json()
    assert body["call_status"] == "completed" and len(body["segments"]) == 3
    Call.objects.filter(pk=call.pk).update(ended_at=timezone.now() - dt.timedelta(minutes=6))
    response = read(org_a, call, token)
    assert response.status_code == 401 and response.json()["error"]["code"] == "call_token_expired"


@pytest.mark.parametrize("query", ["?after=-1", "?after=abc", "?after=99999999999"])
def test_a_malformed_position_is_a_400(org_a, live_call, query):
    call, token = live_call
    response = read(org_a, call, token, query)
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_a_clinic_website_may_poll_it_across_origins(org_a, live_call):
    call, token = live_call
    origin = org_a.allowed_origins[0]
    preflight = Client().options(
        f"/api/calls/{call.pk}/transcript",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204 and "GET" in preflight["Access-Control-Allow-Methods"]
    assert read(org_a, call, token, Origin=origin)["Access-Control-Allow-Origin"] == origin
    assert read(org_a, call, token, Origin="https://evil.example").status_code == 403
