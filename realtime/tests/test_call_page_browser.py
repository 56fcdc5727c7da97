"""The call page in a real browser (Debian's chromium driven by Playwright, as the board's browser test): a clinic
user signs in, the call list shows the post-call summary in one line, and the call's page shows the whole summary
above the transcript and a voicemail player whose audio loads (HTTP 200/206) from our recording proxy, which fetches
it from the fake Twilio over a real socket. The summary itself was made by the notification worker's code through
the fake OpenAI's Responses API. Screenshots go to test-artifacts/call-page/.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from calls import summaries
from calls.models import Call, CallSummary
from calls.services import SegmentInput, call_end, transcript_segments_append
from calls.tests.test_board_browser import browser, live  # noqa: F401 - the shared live server and Chromium
from conftest import PASSWORD, make_call, make_org, make_user
from fakes.openai import FakeOpenAI
from fakes.twilio.rest_server import FakeTwilioRest
from fakes.twilio.testing import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from organizations.models import Membership

ARTIFACTS = django_settings.BASE_DIR / "test-artifacts" / "call-page"
LINES = [
    ("agent", "Riverside Clinic, how can I help?"),
    ("caller", "Hi, this is Robert Chen. I need to book an appointment about my knee, please call me back."),
    ("agent", "I will leave a message for the team to call you back today."),
]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fakes(settings):
    with (
        FakeOpenAI.start_in_thread() as openai_fake,
        FakeTwilioRest(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as twilio_fake,
    ):
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = openai_fake.base_url, "sk-test-browser"
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
        settings.TWILIO_API_BASE_URL = twilio_fake.base_url
        yield openai_fake, twilio_fake


@pytest.fixture
def voicemail_call(fakes) -> tuple[Call, str]:
    """Made before the browser starts (Playwright's sync API then owns this thread's event loop)."""
    _openai, twilio_fake = fakes
    clinic = make_org("riverside-clinic")
    make_user("rita", clinic, Membership.Role.STAFF)
    sid = twilio_fake.add_recording(seconds=3.0)
    call = make_call(
        clinic,
        channel=Call.Channel.PHONE,
        minutes_ago=20,
        caller_phone="+14155550123",
        metadata={"voicemail": {"recording_sid": sid, "duration": 3, "status": "completed"}},
    )
    start = call.started_at
    transcript_segments_append(
        call=call,
        segments=[
            SegmentInput(speaker=speaker, text=text, occurred_at=start + dt.timedelta(seconds=5 * n))
            for n, (speaker, text) in enumerate(LINES)
        ],
    )
    call = call_end(call=call, ended_at=start + dt.timedelta(minutes=1))
    summaries.summarize_due(now=timezone.now() + dt.timedelta(minutes=1))
    summary = CallSummary.objects.get(call=call)
    assert summary.status == CallSummary.Status.DONE
    return call, summary.summary


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll `expression` in the page (page.evaluate, which the page's CSP allows; wait_for_function needs eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout} s: {expression}"
        page.wait_for_timeout(100)


def test_the_call_page_shows_the_summary_and_plays_the_voicemail_from_the_proxy(voicemail_call, live, browser):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    voicemail_call, summary_text = voicemail_call
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    recording_statuses: list[int] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_response(response) -> None:
        if "/recording.wav" in response.url:
            recording_statuses.append(response.status)
        elif response.status >= 400 and "favicon" not in response.url:
            errors.append(f"{response.status} {response.url}")

    page.on("response", on_response)
    page.goto(f"{live.url}/admin/login/?next=/admin/calls/call/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live.url}/admin/calls/call/")
    line = page.locator(".call-summary-line").first
    assert summary_text[:40] in line.inner_text()
    assert page.locator(".call-summary-follow-up").first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "01-call-list-summary.png"), full_page=True)

    page.goto(f"{live.url}/admin/calls/call/{voicemail_call.pk}/change/")
    text = page.locator(".call-summary-text").inner_text()
    assert text == summary_text
    assert page.locator(".call-summary-follow-up-value").inner_text() == "Yes"
    body = page.content()
    assert body.index(summary_text) < body.index("I will leave a message for the team")  # the transcript stays
    player = page.locator("audio.call-recording")
    assert player.get_attribute("src") == f"/console/calls/{voicemail_call.pk}/recording.wav"
    wait_until(page, "document.querySelector('audio.call-recording').readyState >= 1")
    duration = page.evaluate("document.querySelector('audio.call-recording').duration")
    assert 2.9 < duration < 3.1
    # Seeking asks for a byte range, which the proxy passes through.
    page.evaluate("document.querySelector('audio.call-recording').currentTime = 2.0")
    wait_until(page, "document.querySelector('audio.call-recording').readyState >= 2")
    page.locator("audio.call-recording").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "02-call-page-summary-and-voicemail.png"), full_page=True)
    assert recording_statuses, "the player never asked the proxy for the recording"
    assert set(recording_statuses) <= {200, 206}, recording_statuses
    assert not errors, errors
    context.close()


@pytest.fixture
def recorded_call(fakes) -> Call:
    """A phone call the clinic recorded whole (Organization.record_calls) that also ended in a voicemail."""
    _openai, twilio_fake = fakes
    clinic = make_org("riverside-clinic", record_calls=True)
    make_user("rita", clinic, Membership.Role.STAFF)
    whole, voicemail = twilio_fake.add_recording(seconds=5.0), twilio_fake.add_recording(seconds=2.0)
    return make_call(
        clinic,
        channel=Call.Channel.PHONE,
        minutes_ago=20,
        caller_phone="+14155550123",
        metadata={
            "recording": {"recording_sid": whole, "duration": 5, "status": "completed", "channels": 2},
            "voicemail": {"recording_sid": voicemail, "duration": 2, "status": "completed"},
        },
    )


def test_a_recorded_call_plays_the_whole_call_and_the_voicemail_from_the_proxy(recorded_call, live, browser):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{live.url}/admin/login/?next=/admin/calls/call/{recorded_call.pk}/change/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live.url}/admin/calls/call/{recorded_call.pk}/change/")
    players = page.locator("audio.call-recording")
    assert players.count() == 2
    assert [players.nth(i).get_attribute("src") for i in range(2)] == [
        f"/console/calls/{recorded_call.pk}/call-recording.wav",
        f"/console/calls/{recorded_call.pk}/recording.wav",
    ]
    wait_until(page, "[...document.querySelectorAll('audio.call-recording')].every(a => a.readyState >= 1)")
    durations = page.evaluate("[...document.querySelectorAll('audio.call-recording')].map(a => a.duration)")
    assert 4.9 < durations[0] < 5.1 and 1.9 < durations[1] < 2.1, durations  # each player got its own recording
    assert "The whole call (0:05)" in page.content()
    players.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "03-call-page-whole-call-and-voicemail.png"), full_page=True)
    assert not errors, errors
    context.close()
