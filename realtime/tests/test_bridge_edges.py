"""The media bridge at its edges, over real sockets through daphne: who may open a stream, barge-in, and every way
a stream ends that is not a goodbye (OpenAI drops, the clinic's max call length, a dead channel layer)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time

import pytest

from calls.models import Call
from conftest import make_org
from fakes.openai import FakeOpenAI
from fakes.openai.server import clock_for
from fakes.simulate_phone import ScriptedCaller, _stream_parameters, _wait_for_end, simulate_phone_call
from fakes.twilio.audio import tone
from fakes.twilio.media import MediaStreamClient
from fakes.twilio.runner import LoopThread
from fakes.twilio.testing import (
    TEST_AUTH_TOKEN,
    TEST_PUBLIC_BASE_URL,
    add_number,
    open_around_the_clock,
)
from fakes.twilio.webhooks import WebhookClient, new_call_sid
from realtime import bridge
from realtime.consumers import TwilioMediaConsumer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLINIC_NUMBER = "+14155550111"
PUBLIC_WSS = "wss://voice.clinic.example/twilio/media"


@pytest.fixture
def fake(settings):
    """A fake OpenAI with no script: it answers the greeting and keeps the session open."""
    started = FakeOpenAI.start_in_thread(time_scale=0.1)
    settings.OPENAI_BASE_URL = started.base_url
    yield started
    started.stop()


@pytest.fixture
def org(db):
    clinic = make_org("clinic-a", agent_greeting="Hello from Clinic A.")
    open_around_the_clock(clinic)
    add_number(clinic, CLINIC_NUMBER)
    return clinic


def ws_url(server: str) -> str:
    return server.replace("http://", "ws://") + "/twilio/media"


def incoming_call(server: str) -> tuple[str, dict[str, str]]:
    """Twilio's incoming-call webhook; returns (CallSid, the <Stream> parameters)."""
    call_sid = new_call_sid()
    with WebhookClient(server_url=server, public_base_url=TEST_PUBLIC_BASE_URL, auth_token=TEST_AUTH_TOKEN) as hooks:
        answer = hooks.voice(call_sid=call_sid, caller="+14155550199", called=CLINIC_NUMBER)
    assert answer.status_code == 200
    return call_sid, _stream_parameters(answer.text)[1]


def stream(server: str, params: dict, **kwargs):
    options = {
        "auth_token": TEST_AUTH_TOKEN,
        "audio": tone(0.3),
        "stream_token": params.get("stream_token"),
        "call_id": params.get("call_id", ""),
        "signature_url": PUBLIC_WSS,
        "linger_seconds": 0.5,
    }
    options.update(kwargs)
    with LoopThread() as loop:
        return loop.run(MediaStreamClient(ws_url(server), **options).run())


def stream_ended(server: str, call_sid: str) -> str:
    with WebhookClient(server_url=server, public_base_url=TEST_PUBLIC_BASE_URL, auth_token=TEST_AUTH_TOKEN) as hooks:
        return hooks.stream_ended(call_sid=call_sid).text


# --- who may open a stream ----------------------------------------------------------------------------------------


def test_an_upgrade_without_a_signature_is_refused(phone, fake, org):
    _sid, params = incoming_call(phone)
    result = stream(phone, params, signed=False)
    assert result.handshake_status == 403
    assert fake.sessions == []


def test_an_upgrade_signed_with_another_secret_or_for_another_url_is_refused(phone, fake, org):
    _sid, params = incoming_call(phone)
    forged = stream(phone, params, auth_token="not-the-auth-token")
    other_url = stream(phone, params, signature_url="wss://evil.example/twilio/media")
    assert forged.handshake_status == 403 and other_url.handshake_status == 403
    assert fake.sessions == []


@pytest.mark.parametrize("token", [None, "st_unknown", ""], ids=["missing", "unknown", "empty"])
def test_a_stream_without_a_valid_token_is_closed_before_any_audio_goes_upstream(phone, fake, org, token):
    call_sid, params = incoming_call(phone)
    result = stream(phone, {**params, "stream_token": token})
    assert result.closed_by_server and result.received_media_messages == 0
    assert fake.sessions == []  # OpenAI was never even dialled
    assert Call.objects.get(twilio_call_sid=call_sid).stream_started_at is None


def test_a_reused_stream_token_is_refused_one_stream_per_call(phone, fake, org):
    _sid, params = incoming_call(phone)
    first = stream(phone, params, fast_marks=True)
    assert first.received_media_messages > 0 and len(fake.sessions) == 1
    again = stream(phone, params)
    assert again.closed_by_server and again.received_media_messages == 0
    assert len(fake.sessions) == 1


def test_another_calls_token_does_not_open_this_call(phone, fake, org):
    _sid_a, params_a = incoming_call(phone)
    _sid_b, params_b = incoming_call(phone)
    result = stream(phone, {"call_id": params_a["call_id"], "stream_token": params_b["stream_token"]})
    assert result.closed_by_server and fake.sessions == []


def test_the_bridge_uses_no_channel_layer_and_calls_work_while_redis_is_down(phone, org, settings):
    assert TwilioMediaConsumer.channel_layer_alias is None
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]}}
    }
    result = simulate_phone_call(org, "routine_booking", server_url=phone, time_scale=0.1, fast_marks=True)
    assert result.call.end_reason == Call.EndReason.AGENT_ENDED
    assert result.call.intake.data["patient_name"] == "Maria Gonzalez"


# --- barge-in -----------------------------------------------------------------------------------------------------

BARGE_IN = """
name: barge_in
greeting: >-
  Thank you for calling the clinic. Our hours are eight to five on weekdays, and for prescription refills please
  have your pharmacy send us a request. Now, how can I help you today?
turns:
  - caller: Sorry to cut in, I just need my lab results.
    interrupt: true
    delay: 2.0
    agent: Of course, someone will call you back about your results.
"""


def test_talking_over_the_agent_clears_twilio_and_truncates_to_what_the_caller_heard(phone, org, settings, tmp_path):
    scenario = tmp_path / "barge_in.yaml"
    scenario.write_text(BARGE_IN)
    fake = FakeOpenAI.start_in_thread(scenario=str(scenario), time_scale=1.0)
    settings.OPENAI_BASE_URL = fake.base_url
    try:
        result = simulate_phone_call(org, scenario, server_url=phone, fake_openai_url=fake.base_url, hangup_after=0.2)
        log = fake.sessions[0]
    finally:
        fake.stop()

    assert result.media.clears == 1
    [truncate] = [e for e in log.received if e["type"] == "conversation.item.truncate"]
    [done] = log.truncations
    echoes = [how for _name, how in result.media.marks_echoed]
    played = echoes[: echoes.index("cleared")]  # the greeting's marks Twilio confirmed before the clear
    assert set(played) == {"played"}
    # Marks cover 100 ms each. Never more than Twilio confirmed played; fewer by the marks echoed while the clear was
    # on its way (a loaded machine widens that window, so there is no lower bound tighter than the one below).
    assert truncate["audio_end_ms"] <= 100 * len(played)
    assert 1000 <= truncate["audio_end_ms"] < done["produced_ms"]  # ~2 s heard of a longer greeting
    assert truncate["content_index"] == 0 and log.errors() == []
    # Marks every ~100 ms of audio, not one per audio delta frame.
    assert len(result.media.marks_received) <= result.media.received_ms // 100 + 5


# --- ends that are not a goodbye ----------------------------------------------------------------------------------


def test_when_openai_drops_mid_call_twilio_is_let_go_without_goodbye_and_the_caller_gets_the_fallback(phone, fake, org):
    call_sid, params = incoming_call(phone)
    caller = ScriptedCaller(
        ws_url(phone),
        hang_up=_never,
        max_seconds=10,
        auth_token=TEST_AUTH_TOKEN,
        stream_token=params["stream_token"],
        call_id=params["call_id"],
        call_sid=call_sid,
        signature_url=PUBLIC_WSS,
        fast_marks=True,
    )
    with LoopThread() as loop:
        running = loop.submit(caller.run())
        _wait(lambda: fake.sessions and fake.sessions[0].audio_bytes_in > 1600)
        fake.run(fake.fake.stop())  # the upstream goes away mid-call
        result = running.result(timeout=15)

    assert result.closed_by_server and not result.stopped
    call = _wait_for_end(call_sid)
    assert call.is_ended and call.end_reason == Call.EndReason.ERROR
    assert "stream_outcome" not in call.metadata["twilio"]
    fallback = stream_ended(phone, call_sid)
    assert "<Dial" in fallback and org.escalation_phone in fallback


def test_the_clinics_max_call_length_ends_the_stream_with_the_fallback(phone, fake, org, monkeypatch):
    monkeypatch.setattr(bridge, "DEADLINE_CHECK_SECONDS", 0.1)
    org.max_call_minutes = 1
    org.save(update_fields=["max_call_minutes"])
    call_sid, params = incoming_call(phone)
    Call.objects.filter(twilio_call_sid=call_sid).update(
        started_at=Call.objects.get(twilio_call_sid=call_sid).started_at - dt.timedelta(seconds=61)
    )
    result = stream(phone, params, audio=tone(3.0), fast_marks=True)

    assert result.closed_by_server and not result.stopped
    call = _wait_for_end(call_sid)
    assert call.end_reason == Call.EndReason.TIMEOUT
    assert "<Dial" in stream_ended(phone, call_sid)


def test_a_caller_hanging_up_ends_the_call_and_closes_openai(phone, fake, org):
    call_sid, params = incoming_call(phone)
    result = stream(phone, params, fast_marks=True)
    assert result.stopped
    call = _wait_for_end(call_sid)
    assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.CALLER_HANGUP
    _wait(lambda: fake.sessions[0].ended.is_set())
    # Caller audio went upstream untouched, frame by frame.
    appended = [e["audio"] for e in fake.sessions[0].received if e["type"] == "input_audio_buffer.append"]
    assert b"".join(base64.b64decode(a) for a in appended) == tone(0.3)[: 160 * len(appended)]


async def _never() -> bool:
    return False


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# --- sockets that never start ---------------------------------------------------------------------------------------


def test_sockets_that_never_send_a_valid_start_are_closed_and_never_count_as_live_calls(phone, fake, org, settings):
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from core import drain
    from fakes.twilio.webhooks import sign

    settings.TWILIO_MEDIA_START_TIMEOUT_SECONDS = 0.5
    _sid, params = incoming_call(phone)
    seen_live: list[int] = []

    async def idle_socket() -> float:
        headers = {"X-Twilio-Signature": sign(TEST_AUTH_TOKEN, PUBLIC_WSS)}
        async with connect(ws_url(phone), additional_headers=headers) as socket:
            opened = time.monotonic()
            await socket.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')  # ... and no start
            seen_live.append(drain.live_call_count())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(socket.recv(), timeout=10)
            return time.monotonic() - opened

    async def idle_sockets() -> list[float]:
        return list(await asyncio.gather(*(idle_socket() for _ in range(20))))

    with LoopThread() as loop:
        lifetimes = loop.run(idle_sockets())
    assert len(lifetimes) == 20 and all(lifetime < 10 for lifetime in lifetimes)  # closed by the server, not the wait
    assert seen_live and max(seen_live) == 0  # a drain would not wait for them
    assert fake.sessions == []

    # A real stream after them still starts, and counts as a live call while it runs.
    import threading

    results = []
    runner = threading.Thread(target=lambda: results.append(stream(phone, params, audio=tone(2.0), fast_marks=True)))
    runner.start()
    _wait(lambda: drain.live_call_count() == 1)
    runner.join(timeout=30)
    assert results and results[0].received_media_messages > 0
    _wait(lambda: drain.live_call_count() == 0)


# --- a session OpenAI refused -------------------------------------------------------------------------------------


def test_a_refused_session_update_fails_the_call_without_a_greeting_and_gives_the_caller_the_fallback(
    phone, fake, org, settings
):
    # The day after the transcription model's announced shutdown, the API refuses the whole session.update: without
    # this check the caller would get OpenAI's default session (24 kHz PCM on a μ-law line, no prompt, no tools).
    settings.REALTIME_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
    fake.fake.clock = clock_for("2027-02-27")
    call_sid, params = incoming_call(phone)
    result = stream(phone, params, audio=tone(1.5), fast_marks=True)

    log = fake.sessions[0]
    assert [e["code"] for e in log.errors()] == ["model_not_found"]
    assert "response.create" not in log.received_types()  # no greeting on the wrong session
    assert result.closed_by_server and not result.stopped and result.received_media_messages == 0
    call = _wait_for_end(call_sid)
    assert call.status == Call.Status.FAILED and call.end_reason == Call.EndReason.ERROR
    assert [(e["event"], e["code"]) for e in call.metadata["upstream_errors"]] == [
        ("session.update", "model_not_found")
    ]
    assert "stream_outcome" not in call.metadata["twilio"]
    fallback = stream_ended(phone, call_sid)
    assert "<Dial" in fallback and org.escalation_phone in fallback


def test_an_accepted_session_update_comes_before_the_greeting(phone, fake, org):
    call_sid, params = incoming_call(phone)
    stream(phone, params, fast_marks=True)

    log = fake.sessions[0]
    update = log.received[0]
    assert update["type"] == "session.update" and update["event_id"].startswith("evt_session_")
    sent = log.sent_types()
    assert sent.index("session.updated") < sent.index("response.created")
    assert "upstream_errors" not in Call.objects.get(twilio_call_sid=call_sid).metadata


class _SilentUpstream:
    """An upstream that says hello and then nothing: a session.update nobody answers."""

    def __init__(self) -> None:
        self.frames = ['{"type":"session.created","event_id":"event_1","session":{}}']

    async def recv(self) -> str:
        if self.frames:
            return self.frames.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def test_an_unanswered_session_update_counts_as_refused_after_a_bounded_wait(monkeypatch):
    monkeypatch.setattr(bridge, "SESSION_CONFIRM_LIMIT", 0.2)
    outcome = asyncio.run(bridge._session_refusal(_SilentUpstream(), "evt_session_x"))
    assert outcome == bridge.SESSION_CONFIRM_TIMEOUT


def test_an_error_for_another_event_is_not_a_refusal_of_the_session(monkeypatch):
    upstream = _SilentUpstream()
    upstream.frames += [
        '{"type":"error","error":{"type":"invalid_request_error","code":"x","event_id":"evt_other"}}',
        '{"type":"session.updated","session":{}}',
    ]
    assert asyncio.run(bridge._session_refusal(upstream, "evt_session_x")) is None
