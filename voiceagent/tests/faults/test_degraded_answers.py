"""The answers the fault suite relies on, in-process: a lost database is a 503 with Retry-After (error shape under
/api/, plain elsewhere), throttles count in-process when their store is down, drain refuses new calls (Twilio gets
fallback TwiML), and the reaper ends only calls nobody holds."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from calls.models import Call
from calls.reaper import calls_reap
from calls.services import transcript_segment_append
from conftest import make_call
from core import drain, health
from core.api import throttling
from fakes.twilio.testing import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL, add_number, twilio_post
from fakes.twilio.webhooks import new_call_sid, voice_params

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _not_draining():
    health.set_draining(False)
    yield
    health.set_draining(False)


def start(org):
    return Client().post(
        "/api/call/start",
        {"channel": "web", "caller": {}},
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key},
    )


def test_a_lost_database_answers_503_database_unavailable_with_retry_after_on_the_api(org_a, monkeypatch):
    def down(**kwargs):
        raise OperationalError("connection failed: server closed the connection unexpectedly")

    monkeypatch.setattr("calls.api.views.call_start", down)
    response = start(org_a)
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert response.json() == {
        "error": {"code": "database_unavailable", "message": "The database is unavailable; retry shortly."}
    }


def test_a_lost_database_answers_a_plain_503_to_twilio(org_a, settings, monkeypatch):
    settings.PUBLIC_BASE_URL, settings.TWILIO_AUTH_TOKEN = TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN

    def down(**kwargs):
        raise OperationalError("the pool timed out")

    monkeypatch.setattr("realtime.telephony.services.incoming_call_answer", down)
    params = voice_params(call_sid=new_call_sid(), caller="+14155550199", called="+14155550111")
    response = twilio_post(Client(raise_request_exception=False), "/twilio/voice", params)
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert b"Traceback" not in response.content and b"pool" not in response.content


def test_throttles_count_in_this_process_when_the_cache_is_down(org_a, settings, monkeypatch):
    settings.CALLER_THROTTLE_RATES = {"caller_ip": "3/day", "caller_org": "1000/min"}

    def unavailable(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(throttling.cache, "add", unavailable)
    monkeypatch.setattr(throttling, "_local_counts", {})
    statuses = [start(org_a).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]  # no 5xx, and still limited


def test_a_draining_process_refuses_new_calls_with_503_and_retry_after(org_a):
    drain.start_drain(exit_process=None)
    response = start(org_a)
    assert response.status_code == 503 and response.json()["error"]["code"] == "draining"
    assert response["Retry-After"] == "1"
    assert Client().get("/readyz").json()["status"] == "draining"
    assert not Call.objects.exists()


def test_a_draining_process_answers_twilio_with_the_fallback_instead_of_a_stream(org_a, settings):
    settings.PUBLIC_BASE_URL, settings.TWILIO_AUTH_TOKEN = TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN
    add_number(org_a, "+14155550111")
    drain.start_drain(exit_process=None)
    params = voice_params(call_sid=new_call_sid(), caller="+14155550199", called="+14155550111")
    response = twilio_post(Client(), "/twilio/voice", params)
    assert response.status_code == 200 and b"<Stream" not in response.content
    assert b"<Dial" in response.content or b"<Record" in response.content
    call = Call.objects.get(twilio_call_sid=params["CallSid"])
    assert call.caller_phone == "+14155550199" and call.metadata["twilio"]["drained"] is True


def test_the_reaper_ends_idle_live_calls_as_interrupted_and_leaves_active_ones(org_a):
    idle = make_call(org_a, minutes_ago=10)
    active = make_call(org_a, minutes_ago=10)
    transcript_segment_append(call=active, speaker="caller", text="Still here.", item_id="item_1")
    ended = make_call(org_a, minutes_ago=10)
    Call.objects.filter(pk=ended.pk).update(status="completed", ended_at=timezone.now(), end_reason="caller_hangup")
    reaped = calls_reap(idle_seconds=120)
    assert [call.pk for call in reaped] == [idle.pk]
    idle.refresh_from_db()
    assert (idle.status, idle.end_reason, idle.ended_at) == ("abandoned", "interrupted", idle.started_at)
    active.refresh_from_db()
    assert active.status == "in_progress" and active.last_activity_at is not None
    assert calls_reap(idle_seconds=120) == []  # idempotent


def test_the_heartbeat_keeps_calls_this_process_holds_from_being_reaped(org_a):
    held = make_call(org_a, minutes_ago=10)
    key = drain.call_opened(held.pk)
    try:
        assert drain.heartbeat_once() == 1
    finally:
        drain.call_closed(key)
    assert calls_reap(idle_seconds=120, now=timezone.now() + dt.timedelta(seconds=60)) == []
    held.refresh_from_db()
    assert held.status == "in_progress"
