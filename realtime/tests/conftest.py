import time
from collections.abc import Iterator

import pytest

from calls import notifications
from core import drain
from fakes.openai import FakeOpenAI
from fakes.simulate_phone import serve_in_thread
from fakes.twilio.rest_server import FakeTwilioRest
from fakes.twilio.testing import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TEST_PUBLIC_BASE_URL,
    add_number,
    open_around_the_clock,
)
from realtime.tests.twilio_helpers import CLINIC_NUMBER

# A canary: must never reach a response or a log line.
API_KEY = "sk-test-SECRETKEY-do-not-leak-0123456789"


@pytest.fixture
def fake_openai(settings):
    """The shipped fake OpenAI on a real loopback socket, with the app pointed at it like a deployment would be."""
    with FakeOpenAI.start_in_thread(time_scale=0.02, pace=0.0, api_key=API_KEY) as handle:
        settings.OPENAI_BASE_URL = handle.base_url
        settings.OPENAI_API_KEY = API_KEY
        settings.OPENAI_TIMEOUT_SECONDS = 2.0
        yield handle


@pytest.fixture
def paced_fake_openai(settings):
    """The fake at a fifth of real time with audio streamed at half speed: the caller's next turn does not come
    within milliseconds of a reply (at time_scale 0.02 it did, faster than any caller, and raced the steer)."""
    with FakeOpenAI.start_in_thread(time_scale=0.2, pace=0.5, api_key=API_KEY) as handle:
        settings.OPENAI_BASE_URL = handle.base_url
        settings.OPENAI_API_KEY = API_KEY
        settings.OPENAI_TIMEOUT_SECONDS = 2.0
        yield handle


@pytest.fixture
def twilio_settings(settings):
    """The fake Twilio account and public URL the signing helpers in fakes.twilio.testing sign for."""
    settings.TWILIO_ACCOUNT_SID = TEST_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = TEST_AUTH_TOKEN
    settings.PUBLIC_BASE_URL = TEST_PUBLIC_BASE_URL


@pytest.fixture
def fake_twilio(twilio_settings, settings):
    """The fake Twilio REST API on a real socket, as TWILIO_API_BASE_URL (recordings, call updates)."""
    with FakeTwilioRest(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def clinic(org_a):
    """Clinic A, reachable on CLINIC_NUMBER and open around the clock."""
    add_number(org_a, CLINIC_NUMBER)
    open_around_the_clock(org_a)
    return org_a


@pytest.fixture
def one_writer_at_a_time(monkeypatch, sqlite_readers_do_not_lock):
    """Part of `phone`, the in-process daphne server. The SQLite test database lives in memory, shared
    by this process' threads, where concurrent writers fail with "table is locked" instead of waiting. The server is
    the only writer during a call, so keep the notification delivery threads (tested in calls/tests) and the
    live-call heartbeat (tested in the fault suite) out of it, and let readers not lock tables."""
    monkeypatch.setattr(notifications, "schedule_delivery", lambda **kwargs: None)
    monkeypatch.setattr(drain, "_ensure_heartbeat", lambda: None)


@pytest.fixture
def phone(twilio_settings, one_writer_at_a_time) -> Iterator[str]:
    """The project under daphne on a loopback port (one server per process), reached the way Twilio would.

    A test returns when its client hangs up, but the server ends the call row a moment later. Wait for every call
    this process holds to close before the database is flushed: a flush racing the bridge's last write failed
    (PostgreSQL) or left the next test a half-written row."""
    yield serve_in_thread()
    deadline = time.monotonic() + 15.0
    while drain.live_call_count() and time.monotonic() < deadline:
        time.sleep(0.05)
