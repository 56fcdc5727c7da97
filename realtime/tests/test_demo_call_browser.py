"""The reference browser-call page (/demo/call/) in a real browser (Debian's chromium driven by Playwright).

The app is served by uvicorn in a thread of this process (it shares the test database) on a port chosen at
random, seeded like `make run` seeds it (`seed_demo --origin` with that address); the shipped fake OpenAI runs on
another loopback port, playing a scripted caller, and OPENAI_BASE_URL points at it as `serve` points it. The
page's own button places the call: it mints a session from our server, posts its WebRTC offer across origins to
the fake (the page's CSP allows exactly that origin), reports the OpenAI call id, and our server attaches its
sideband; the scripted conversation then appears on the page from the transcript the server stored, and the
call ends when the agent ends it. The fake answers the offer but carries no media (docs/fakes.md).
Screenshots go to test-artifacts/demo-call/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from calls.models import Call
from calls.tests.test_board_browser import CHROMIUM, CHROMIUM_ARGS, LiveServer
from fakes.openai import FakeOpenAI
from fakes.openai.server import FakeOpenAIThread
from organizations.models import Organization

from .conftest import API_KEY

ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "demo-call"
CLINIC = "riverside-family-medicine"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def upstream(settings) -> Iterator[FakeOpenAIThread]:
    """The fake OpenAI on its own loopback port, playing a routine booking, as `serve` starts it."""
    with FakeOpenAI.start_in_thread(scenario="routine_booking", time_scale=0.02, pace=0.0, api_key=API_KEY) as fake:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, API_KEY
        yield fake


@pytest.fixture
def live(settings, one_writer_at_a_time, upstream) -> Iterator[LiveServer]:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    server = LiveServer()
    # What `make run PORT=…` does before serving: the demo clinics may start calls from the address served on.
    call_command("seed_demo", "--force", "--origin", server.url, stdout=open("/dev/null", "w"))  # noqa: SIM115
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does this) "
            "or set CHROMIUM_PATH. This test must not be skipped."
        )
    from playwright.sync_api import sync_playwright

    # A fake microphone, allowed without a prompt: the page asks for one before it makes its offer.
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield instance
        instance.close()


def _stored_call(openai_call_id: str) -> tuple[str, list[tuple[str, str]]]:
    call = Call.objects.get(openai_call_id=openai_call_id)
    lines = list(call.segments.exclude(speaker="system").order_by("seq").values_list("speaker", "text"))
    return call.status, lines


@pytest.fixture
def publishable_key(live) -> str:
    """Read before the browser starts: Playwright's sync API runs an event loop on this thread, after which the ORM
    refuses to run here (later database work goes through the server's sync thread)."""
    return Organization.objects.get(slug=CLINIC).publishable_key


def test_the_demo_page_places_a_call_against_the_fake_and_shows_its_transcript(
    live, upstream, publishable_key, browser
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.grant_permissions(["microphone"], origin=live.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    refused: list[tuple[int, str]] = []
    page.on("response", lambda r: refused.append((r.status, r.url)) if r.status >= 400 else None)
    page.on("requestfailed", lambda r: errors.append(f"failed {r.url} {r.failure}"))

    def on_console(message) -> None:  # CSP refusals and script errors land here; refused requests are listed above
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    page.on("console", on_console)

    response = page.goto(f"{live.url}/demo/call/")
    assert response is not None and response.status == 200
    fake_origin = upstream.base_url.removesuffix("/v1")
    csp = response.headers["content-security-policy"]
    [connect] = [d.split()[1:] for d in csp.split(";") if d.strip().startswith("connect-src")]
    assert connect == ["'self'", fake_origin]  # exactly the configured OpenAI origin, with its port
    assert page.locator("#fake-notice").is_visible()  # OPENAI_BASE_URL is on this machine: the fake
    page.fill("#org-key", publishable_key)
    page.screenshot(path=str(ARTIFACTS / "01-before-the-call.png"), full_page=True)

    page.click("#start")
    page.wait_for_selector("#transcript li.caller", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "02-in-the-call.png"), full_page=True)
    # The agent ended it (end_call): the page stopped by itself. (A selector wait: the page's CSP forbids the eval
    # that wait_for_function would need.)
    page.locator("#status", has_text="Call ended.").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "03-call-ended.png"), full_page=True)

    shown = [(item.get_attribute("class"), item.text_content()) for item in page.locator("#transcript li").all()]
    [session] = [s for s in upstream.sessions if s.kind == "call"]
    status, stored = live.run_in_server(_stored_call, session.call_id)
    assert status == Call.Status.COMPLETED
    assert shown == stored and len(shown) >= 4  # the whole conversation, in order, as the clinic will review it
    assert shown == session.transcript()  # ...and as the scripted caller and agent said it
    assert {speaker for speaker, _text in shown} == {"caller", "agent"}
    assert page.is_enabled("#start") and not page.is_enabled("#hangup")

    # The offer went from the browser to the fake: across origins, with the minted ephemeral key (never ours).
    [offer] = upstream.requests_to("/realtime/calls")
    assert offer.auth == "ephemeral" and offer.headers.get("Origin") == live.url
    assert offer.raw.decode().startswith("v=0") and "m=audio" in offer.raw.decode()
    assert session.call_id == upstream.calls[session.call_id].call_id
    assert upstream.calls[session.call_id].created_via == "webrtc"
    assert errors == []
    # The only refusal allowed is SQLite's: the in-memory test database fails a second concurrent writer at once
    # (a poll's audit row while the sideband stores a line) with 503 database_unavailable, and the page polls again.
    assert all(status == 503 and "/transcript" in url for status, url in refused), refused
    context.close()
