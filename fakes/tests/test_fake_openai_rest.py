"""REST side of the fake: client_secrets validation as the GA API does it, selectable failure modes, the recorded
requests, the thread runner, the control endpoints and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import cast

import httpx
import openai
import pytest
from django.core.management import call_command
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeSessionCreateRequestParam

from fakes.openai import Failure, FakeOpenAI
from fakes.openai.testing import receptionist_session

pytestmark = pytest.mark.slow

GOOD = {"expires_after": {"anchor": "created_at", "seconds": 120}, "session": {"type": "realtime"}}


async def post(fake: FakeOpenAI, body, *, headers=None, path="/realtime/client_secrets", timeout=5.0):
    headers = {"Authorization": "Bearer sk-test", **(headers or {})}
    async with httpx.AsyncClient(timeout=timeout) as http:
        if isinstance(body, bytes):
            return await http.post(fake.base_url + path, content=body, headers=headers)
        return await http.post(fake.base_url + path, json=body, headers=headers)


def with_session(**fields) -> dict:
    return {"session": {"type": "realtime", **fields}}


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (with_session(voice="alloy"), "beta_api_shape_disabled", "session.voice"),
        (with_session(modalities=["audio", "text"]), "beta_api_shape_disabled", "session.modalities"),
        (with_session(input_audio_format="g711_ulaw"), "beta_api_shape_disabled", "session.input_audio_format"),
        (with_session(turn_detection={"type": "server_vad"}), "beta_api_shape_disabled", "session.turn_detection"),
        (
            with_session(input_audio_transcription={"model": "whisper-1"}),
            "beta_api_shape_disabled",
            "session.input_audio_transcription",
        ),
        (with_session(temperature=0.8), "beta_api_shape_disabled", "session.temperature"),
        (with_session(max_response_output_tokens=200), "beta_api_shape_disabled", "session.max_response_output_tokens"),
        ({"model": "gpt-realtime-2.1", "voice": "alloy"}, "beta_api_shape_disabled", "model"),  # /sessions flat body
        ({"session": {"model": "gpt-realtime-2.1"}}, "missing_required_parameter", "session.type"),
        ({"session": {"type": "realtime", "colour": "blue"}}, "unknown_parameter", "session.colour"),
        ({"session": {"type": "realtime", "model": "gpt-4o"}}, "invalid_value", "session.model"),
        (with_session(audio={"output": {"voice": "robot"}}), "invalid_value", "session.audio.output.voice"),
        (with_session(audio={"input": {"format": "g711_ulaw"}}), "invalid_type", "session.audio.input.format"),
        (
            with_session(audio={"input": {"format": {"type": "audio/pcm", "rate": 16000}}}),
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (with_session(audio={"output": {"speed": 3}}), "decimal_above_max_value", "session.audio.output.speed"),
        (
            with_session(audio={"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}),
            "decimal_above_max_value",
            "session.audio.input.turn_detection.threshold",
        ),
        (with_session(output_modalities=["audio", "text"]), "invalid_value", "session.output_modalities"),
        (with_session(max_output_tokens=99999), "integer_above_max_value", "session.max_output_tokens"),
        (with_session(tools=[{"type": "function", "name": "has space"}]), "invalid_value", "session.tools[0].name"),
        (
            {**GOOD, "expires_after": {"anchor": "created_at", "seconds": 5}},
            "integer_below_min_value",
            "expires_after.seconds",
        ),
        (
            {**GOOD, "expires_after": {"anchor": "created_at", "seconds": 7201}},
            "integer_above_max_value",
            "expires_after.seconds",
        ),
        ({**GOOD, "expires_after": {"anchor": "now"}}, "invalid_value", "expires_after.anchor"),
    ],
)
async def test_client_secrets_refuses_beta_and_invalid_bodies_with_an_openai_400(body, code, param):
    async with FakeOpenAI() as fake:
        response = await post(fake, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {"message": error["message"], "type": "invalid_request_error", "param": param, "code": code}
    assert error["message"]
    assert fake.requests[0].body == body  # recorded exactly as sent, even when refused
    assert fake.client_secrets == {}


async def test_client_secrets_refuses_the_beta_header():
    async with FakeOpenAI() as fake:
        response = await post(fake, GOOD, headers={"OpenAI-Beta": "realtime=v1"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "beta_api_shape_disabled"


async def test_client_secrets_refuses_a_body_that_is_not_json():
    async with FakeOpenAI() as fake:
        response = await post(fake, b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]


async def test_missing_or_wrong_keys_get_401_without_echoing_the_key():
    async with FakeOpenAI(api_key="sk-the-right-one") as fake:
        async with httpx.AsyncClient() as http:
            missing = await http.post(fake.base_url + "/realtime/client_secrets", json=GOOD)
        wrong = await post(fake, GOOD, headers={"Authorization": "Bearer sk-wrong-key-123456789"})
        right = await post(fake, GOOD, headers={"Authorization": "Bearer sk-the-right-one"})
    assert missing.status_code == 401
    assert "didn't provide an API key" in missing.json()["error"]["message"]
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-123456789" not in wrong.text
    assert right.status_code == 200
    assert [r.auth for r in fake.requests] == [None, "invalid", "standard"]
    assert all("sk-" not in json.dumps(r.headers) for r in fake.requests)


async def test_an_ephemeral_key_cannot_mint_and_expires():
    async with FakeOpenAI() as fake:
        minted = (await post(fake, GOOD)).json()
        assert minted["expires_at"] - time.time() == pytest.approx(120, abs=5)
        again = await post(fake, GOOD, headers={"Authorization": f"Bearer {minted['value']}"})
        fake.clock = lambda: time.time() + 121
        expired = await post(
            fake,
            b"v=0\r\n",
            path="/realtime/calls",
            headers={"Authorization": f"Bearer {minted['value']}", "Content-Type": "application/sdp"},
        )
    assert again.status_code == 401
    assert expired.status_code == 401


async def test_legacy_sessions_endpoint_is_gone():
    async with FakeOpenAI() as fake:
        response = await post(fake, {"model": "gpt-realtime-2.1"}, path="/realtime/sessions")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "beta_api_shape_disabled"


@pytest.mark.parametrize(
    ("failure", "exception", "status"),
    [
        (
            Failure(kind="error", status=403, code="model_not_found", message="No access to model"),
            openai.PermissionDeniedError,
            403,
        ),
        (Failure(kind="error"), openai.BadRequestError, 400),
        (Failure(kind="server_error"), openai.InternalServerError, 500),
        (Failure(kind="server_error", status=503), openai.InternalServerError, 503),
        (Failure(kind="rate_limit", retry_after=7), openai.RateLimitError, 429),
    ],
)
async def test_failure_modes_answer_with_the_selected_status_and_an_openai_error_body(failure, exception, status):
    async with FakeOpenAI(failure=failure) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        with pytest.raises(exception) as raised:
            await client.realtime.client_secrets.create(session={"type": "realtime"})
    assert raised.value.status_code == status
    assert set(raised.value.body) == {"message", "type", "param", "code"}
    if failure.code:
        assert raised.value.code == failure.code
    if failure.kind == "rate_limit":
        assert raised.value.response.headers["retry-after"] == "7"


async def test_a_failure_for_a_limited_number_of_times_lets_a_retry_succeed():
    async with FakeOpenAI(failure=Failure(kind="server_error", times=1)) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=1)
        secret = await client.realtime.client_secrets.create(session={"type": "realtime"})
    assert secret.value.startswith("ek_")
    assert len(fake.requests) == 2


async def test_hang_leaves_the_client_to_its_own_timeout():
    async with FakeOpenAI(failure=Failure(kind="hang")) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            await client.realtime.client_secrets.create(session={"type": "realtime"})


async def test_slow_body_times_out_a_short_read_timeout_and_completes_otherwise():
    async with FakeOpenAI(failure=Failure(kind="slow_body", delay=0.2)) as fake:
        with pytest.raises(httpx.ReadTimeout):
            await post(fake, GOOD, timeout=httpx.Timeout(5.0, read=0.1))
        complete = await post(fake, GOOD)
    assert complete.status_code == 200
    assert complete.json()["value"].startswith("ek_")


async def test_malformed_json_and_a_dropped_connection():
    async with FakeOpenAI(failure=Failure(kind="malformed_json")) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        response = await post(fake, GOOD)
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()
        fake.failure = Failure(kind="close")
        with pytest.raises(openai.APIConnectionError):
            await client.realtime.client_secrets.create(session={"type": "realtime"})


async def test_failure_applies_only_to_its_path_unless_star():
    async with FakeOpenAI(failure=Failure(kind="server_error", path="/v1/realtime/calls")) as fake:
        ok = await post(fake, GOOD)
        fake.failure = Failure(kind="server_error", path="*")
        failed = await post(fake, GOOD)
    assert ok.status_code == 200
    assert failed.status_code == 500


async def test_control_endpoints_select_failures_register_calls_and_list_requests():
    async with FakeOpenAI() as fake, httpx.AsyncClient() as http:
        control = f"http://{fake.host}:{fake.port}/_fake"
        set_failure = await http.post(f"{control}/failure", json={"kind": "rate_limit", "retry_after": 2})
        limited = await post(fake, GOOD)
        await http.post(f"{control}/failure", json={})
        ok = await post(fake, GOOD)
        bad = await http.post(f"{control}/failure", json={"kind": "explode"})
        registered = await http.post(f"{control}/calls", json={"scenario": "request_human"})
        recorded = (await http.get(f"{control}/requests")).json()
    assert set_failure.status_code == 200
    assert limited.status_code == 429
    assert ok.status_code == 200
    assert bad.status_code == 400
    call_id = registered.json()["call_id"]
    scenario = fake.calls[call_id].scenario
    assert scenario is not None and scenario.name == "request_human"
    assert [r["path"] for r in recorded] == ["/v1/realtime/client_secrets"] * 2  # control calls are not recorded
    assert recorded[0]["headers"]["Authorization"] == "<redacted>"


async def test_webrtc_call_requires_sdp_and_a_known_content_type():
    async with FakeOpenAI() as fake:
        not_sdp = await post(fake, b"hello", path="/realtime/calls", headers={"Content-Type": "application/sdp"})
        wrong_type = await post(fake, {"sdp": "v=0"}, path="/realtime/calls")
        hangup_unknown = await post(fake, b"", path="/realtime/calls/rtc_nope/hangup")
    assert not_sdp.status_code == 400
    assert wrong_type.status_code == 400
    assert hangup_unknown.status_code == 404


def test_the_thread_runner_serves_sync_clients():
    with FakeOpenAI.start_in_thread(scenario="routine_booking", time_scale=0) as handle:
        client = openai.OpenAI(api_key="sk-test", base_url=handle.base_url, max_retries=0)
        secret = client.realtime.client_secrets.create(
            session=cast(RealtimeSessionCreateRequestParam, receptionist_session())
        )
        call_id = handle.register_call(scenario="request_human", session={"type": "realtime"})
        recorded = handle.requests_to("/realtime/client_secrets")
    assert secret.value.startswith("ek_")
    assert recorded[0].body["session"]["tools"][0]["name"] == "complete_intake"
    assert handle.calls[call_id].created_via == "registered"
    stopped = openai.OpenAI(api_key="sk-test", base_url=handle.base_url, max_retries=0, timeout=1)
    with pytest.raises(openai.APIConnectionError):
        stopped.realtime.client_secrets.create(session={"type": "realtime"})


def test_python_dash_m_prints_the_bound_address_and_serves():
    process = subprocess.Popen(  # our own module, fixed arguments
        [sys.executable, "-m", "fakes.openai", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        minted = httpx.post(base_url + "/realtime/client_secrets", json=GOOD, headers={"Authorization": "Bearer sk-x"})
        assert minted.status_code == 200
    finally:
        process.terminate()
        process.wait(5)
    assert process.returncode == 0


def test_management_command_lists_the_shipped_scenarios(capsys):
    call_command("fake_openai", "--list")
    out = capsys.readouterr().out
    for name in ("routine_booking", "after_hours_message", "chest_pain_emergency", "request_human", "spanish_routine"):
        assert name in out


# What Chromium 156 offers for the demo page (one microphone track, then the "oai-events" data channel), trimmed.
BROWSER_OFFER = (
    "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9\r\nc=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef01234567\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:1\r\n"
    "a=sctp-port:5000\r\n"
)


async def test_a_browser_may_post_its_offer_across_origins_and_read_the_location():
    async with FakeOpenAI() as fake:
        minted = (await post(fake, GOOD)).json()
        async with httpx.AsyncClient(timeout=5.0) as http:
            preflight = await http.options(
                f"{fake.base_url}/realtime/calls",
                headers={
                    "Origin": "http://127.0.0.1:8123",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            odd_header = await http.options(
                f"{fake.base_url}/realtime/calls",
                headers={
                    "Origin": "http://127.0.0.1:8123",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,originator",
                },
            )
        answer = await post(
            fake,
            BROWSER_OFFER.encode(),
            path="/realtime/calls",
            headers={
                "Authorization": f"Bearer {minted['value']}",
                "Content-Type": "application/sdp",
                "Origin": "http://127.0.0.1:8123",
            },
        )
    assert preflight.status_code == 204
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in odd_header.headers  # the browser refuses the request it asked about
    assert [r.path for r in fake.requests] == ["/v1/realtime/client_secrets", "/v1/realtime/calls"]  # no preflight
    assert answer.status_code == 201
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-expose-headers"] == "Location"
    assert answer.headers["location"].startswith("/v1/realtime/calls/rtc_")


async def test_the_sdp_answer_mirrors_the_browsers_offer_section_by_section():
    async with FakeOpenAI() as fake:
        minted = (await post(fake, GOOD)).json()
        answer = await post(
            fake,
            BROWSER_OFFER.encode(),
            path="/realtime/calls",
            headers={"Authorization": f"Bearer {minted['value']}", "Content-Type": "application/sdp"},
        )
    sdp = answer.text
    sections = sdp.split("\r\nm=")[1:]
    assert [s.split(" ", 1)[0] for s in sections] == ["audio", "application"]
    assert "a=group:BUNDLE 0 1" in sdp and "a=mid:0" in sections[0] and "a=mid:1" in sections[1]
    assert sections[0].startswith("audio 9 UDP/TLS/RTP/SAVPF 111") and "a=rtcp-mux" in sections[0]
    for section in sections:  # what a browser refuses an answer without
        assert "a=ice-ufrag:" in section and "a=ice-pwd:" in section and "a=setup:active" in section
        assert "a=fingerprint:sha-256 " in section
    assert "a=candidate" not in sdp  # no media server behind it: the peer connection never connects
