"""POST /api/realtime/session against the fake OpenAI: the exact GA request, and every upstream failure mapped."""

import logging
import socket
import time

import pytest
from django.test import Client

from calls.models import Call
from fakes.openai import Failure
from realtime.services import session_for

from .conftest import API_KEY

pytestmark = pytest.mark.django_db


def mint(org, body=None, **headers):
    return Client().post(
        "/api/realtime/session",
        body or {},
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key, **headers},
    )


def start_web_call(org) -> dict:
    """A web call started through the public API, before any session is minted for it."""
    response = Client().post(
        "/api/call/start",
        {"channel": "web", "caller": {}},
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key},
    )
    return response.json()


def test_minting_starts_a_web_call_and_returns_a_short_lived_secret(fake_openai, org_a):
    response = mint(org_a)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["client_secret"]["value"].startswith("ek_") and body["client_secret"]["expires_at"] > time.time()
    assert body["call_token"].startswith("ct_")
    assert body["model"] == "gpt-realtime-2.1" and body["voice"] == org_a.agent_voice
    assert body["session"]["type"] == "realtime" and len(body["session"]["tools"]) == 3
    call = Call.objects.get(pk=body["call_id"])
    assert call.organization == org_a and call.channel == "web" and call.status == "in_progress"
    assert call.token_matches(body["call_token"])


def test_upstream_receives_the_clinics_ga_session_with_a_short_expiry(fake_openai, org_a):
    org_a.agent_voice, org_a.vad_threshold = "cedar", 0.65
    org_a.save()
    assert mint(org_a).status_code == 201
    (request,) = fake_openai.requests_to("/realtime/client_secrets")
    assert request.body["expires_after"] == {"anchor": "created_at", "seconds": 120}
    expected = session_for(org_a)
    sent = request.body["session"]
    assert (
        sent["instructions"].split("Current clinic time")[0] == expected["instructions"].split("Current clinic time")[0]
    )
    assert {k: v for k, v in sent.items() if k != "instructions"} == {
        k: v for k, v in expected.items() if k != "instructions"
    }
    assert sent["audio"]["output"]["voice"] == "cedar"
    assert sent["audio"]["input"]["turn_detection"]["threshold"] == 0.65
    assert request.headers.get("OpenAI-Beta") is None


def test_minting_for_an_existing_call_needs_its_token_and_returns_no_new_token(fake_openai, org_a):
    started = start_web_call(org_a)
    response = mint(org_a, {"call_id": started["call_id"]}, **{"X-Call-Token": started["call_token"]})
    assert response.status_code == 201
    assert response.json()["call_id"] == started["call_id"] and "call_token" not in response.json()
    assert mint(org_a, {"call_id": started["call_id"]}).status_code == 401
    assert mint(org_a, {"call_id": started["call_id"]}, **{"X-Call-Token": "ct_wrongwrongwrong"}).status_code == 401
    assert Call.objects.count() == 1


def test_minting_for_an_ended_call_is_refused(fake_openai, org_a):
    started = start_web_call(org_a)
    Client().post(
        "/api/call/end",
        {"call_id": started["call_id"]},
        content_type="application/json",
        headers={"X-Org-Key": org_a.publishable_key, "X-Call-Token": started["call_token"]},
    )
    response = mint(org_a, {"call_id": started["call_id"]}, **{"X-Call-Token": started["call_token"]})
    assert response.status_code == 409 and response.json()["error"]["code"] == "call_ended"


def test_unknown_clinic_key_is_refused_before_any_upstream_request(fake_openai, org_a):
    response = Client().post(
        "/api/realtime/session", {}, content_type="application/json", headers={"X-Org-Key": "pk_doesnotexist000000"}
    )
    assert response.status_code == 401
    assert fake_openai.requests_to("/realtime/client_secrets") == []


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (Failure(kind="error", status=400, code="invalid_value", message="Invalid voice."), 502, "upstream_rejected"),
        (
            Failure(kind="error", status=401, code="invalid_api_key", message="Incorrect API key."),
            502,
            "upstream_rejected",
        ),
        (Failure(kind="rate_limit"), 502, "upstream_rejected"),
        (Failure(kind="server_error"), 502, "upstream_unavailable"),
        (Failure(kind="malformed_json"), 502, "upstream_unavailable"),
        (Failure(kind="close"), 502, "upstream_unavailable"),
        (Failure(kind="hang"), 504, "upstream_timeout"),
    ],
    ids=["400", "401", "429", "500", "malformed", "dropped", "hang"],
)
def test_upstream_failures_map_to_clear_errors_without_secrets(
    fake_openai, org_a, settings, caplog, failure, status, code
):
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    fake_openai.fake.failure = failure
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    response = mint(org_a)
    elapsed = time.monotonic() - started
    assert response.status_code == status
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]
    assert elapsed < 5  # bounded: never the SDK's 600 s default
    assert API_KEY not in response.content.decode() and API_KEY not in caplog.text
    assert Call.objects.count() == 0  # a failed mint leaves no dangling live call


def test_upstream_4xx_message_is_relayed_for_the_developer(fake_openai, org_a):
    fake_openai.fake.failure = Failure(kind="error", status=400, code="invalid_value", message="Invalid voice 'x'.")
    assert mint(org_a).json()["error"]["message"] == "Invalid voice 'x'."


def test_connection_refused_is_upstream_unavailable(org_a, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    response = mint(org_a)
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unavailable"
