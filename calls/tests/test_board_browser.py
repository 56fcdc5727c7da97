"""The live escalation board in a real browser (Debian's chromium driven by Playwright).

A real ASGI server (uvicorn, in a thread of this process, so it shares the test database and the in-memory
channel layer) serves the app; staff log in through the console's login form, open the board, a simulated
emergency call runs through the call event pipeline inside the server, and the escalation appears on two open
boards without a reload, with what staff need to act (caller, callback link, the words with the evidence marked),
also at phone width. Acknowledging it on one board moves it out of the open list on both (the second only hears it
through the broadcast); resolving asks for a note. Screenshots go to test-artifacts/board/.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from calls.models import Call, Escalation
from conftest import PASSWORD, make_call, make_org, make_user
from organizations.models import Membership

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "board"
EMERGENCY_UTTERANCE = "my dad is having crushing chest pain and he can't breathe"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class LiveServer:
    """uvicorn serving voiceagent.asgi in a background thread, with static files served from the finders."""

    def __init__(self) -> None:
        import uvicorn

        from voiceagent.asgi import application

        static = ASGIStaticFilesHandler(application)

        async def app(scope, receive, send):
            target = static if scope["type"] == "http" else application
            await target(scope, receive, send)

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return
            threading.Event().wait(0.05)
        raise RuntimeError("the live server did not start")

    def run_in_server(self, fn, *args, **kwargs):
        """Run sync `fn` the way a transport inside the server does: on the server's sync thread, from its loop."""
        future = asyncio.run_coroutine_threadsafe(database_sync_to_async(fn)(*args, **kwargs), self.loop)
        return future.result(timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live(settings) -> Iterator[LiveServer]:
    # Plain static URLs (no collectstatic manifest in tests); the wrapper above serves them from the app dirs.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    server = LiveServer()
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

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _log_in(browser, live: LiveServer, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Failed requests by URL (the browser's own favicon probe aside); console errors other than those.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url} {r.request.post_data}")
            if r.status >= 400 and "favicon" not in r.url
            else None
        ),
    )

    def on_console(message) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    page.on("console", on_console)
    page.goto(f"{live.url}/board/")
    assert "/admin/login/" in page.url  # login required: sent to the console's login form
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live.url}/board/")
    page.wait_for_selector("#board-status.board-status--live", timeout=10_000)
    return page, errors


def _simulate_emergency_call(clinic_id) -> str:
    """A caller's emergency utterance through the call event pipeline (triage -> escalation), as a transport
    inside the server would deliver it."""
    from realtime.pipeline import CallEventPipeline

    call = Call.objects.select_related("organization").get(organization_id=clinic_id, status="in_progress")
    pipeline = CallEventPipeline(call)
    result = pipeline.handle(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_caller_1",
            "transcript": EMERGENCY_UTTERANCE,
        }
    )
    [escalation] = result.escalations
    return str(escalation.pk)


@pytest.fixture
def clinics(db):
    """Created before the browser starts: Playwright's sync API runs an event loop on this thread, after which the
    ORM refuses to run here (later database work goes through the server's sync thread)."""
    clinic_a, clinic_b = make_org("clinic-a"), make_org("clinic-b")
    make_user("sam", clinic_a, Membership.Role.STAFF)
    make_user("nina", clinic_a, Membership.Role.STAFF)
    make_call(clinic_a, caller_name="Jane Doe", caller_phone="+14155550199")
    foreign = Escalation.objects.create(
        call=make_call(clinic_b), organization=clinic_b, level="emergency", source="keyword", reason="stroke_signs"
    )
    return clinic_a, foreign


def _escalation_state(escalation_id: str) -> tuple[str, str, str]:
    escalation = Escalation.objects.select_related("acknowledged_by").get(pk=escalation_id)
    who = escalation.acknowledged_by.username if escalation.acknowledged_by else ""
    return escalation.status, who, str(escalation.call_id)


def test_staff_see_a_new_emergency_live_and_acknowledging_it_clears_it_from_every_open_board(live, clinics, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    clinic_a, foreign = clinics

    page, errors = _log_in(browser, live, "sam")
    second, second_errors = _log_in(browser, live, "nina")
    assert page.locator("#open-none").is_visible()
    page.click("#board-sound")  # arms the audible alert (browsers allow audio only after a gesture)
    assert page.get_attribute("#board-sound", "aria-pressed") == "true"
    page.screenshot(path=str(ARTIFACTS / "01-board-empty.png"), full_page=True)

    escalation_id = live.run_in_server(_simulate_emergency_call, clinic_a.pk)

    row = f'#open-rows tr[data-id="{escalation_id}"]'
    for board in (page, second):
        board.wait_for_selector(row, timeout=5_000)  # no reload: it arrived over the socket
        assert "board-row--emergency" in board.get_attribute(row, "class")
        assert board.locator("#board-alert").is_visible()
        assert board.inner_text("#open-count") == "1"
    # What staff need to act: the reason in words, the caller and a callback link, the words with the evidence marked.
    text = page.inner_text(row)
    assert "Chest pain" in text and "chest_pain" not in text
    assert "Jane Doe" in text
    assert page.get_attribute(f"{row} a.board-callback", "href") == "tel:+14155550199"
    assert "chest pain" in " ".join(page.locator(f"{row} .board-words mark").all_inner_texts())
    assert page.locator(f"{row} .board-age").get_attribute("class") in {
        "board-age board-age--fresh",
        "board-age board-age--due",
        "board-age board-age--overdue",  # a slow machine may pass half the 2-minute target; the colour is there
    }
    _status, _who, call_id = live.run_in_server(_escalation_state, escalation_id)
    assert page.get_attribute(f"{row} a.board-call-link", "href") == f"/admin/calls/call/{call_id}/change/"
    html = page.content()
    assert str(foreign.pk) not in html and "stroke_signs" not in html  # clinic B's emergency never shows
    assert "Stroke signs" not in html
    assert "times in America/New_York" in page.inner_text("#board-zone")
    page.screenshot(path=str(ARTIFACTS / "02-emergency-alert.png"), full_page=True)

    # The same board at phone width: one card per escalation, the callback link and the buttons within the screen.
    phone = second.context.browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=second.context.storage_state()
    ).new_page()
    phone.goto(f"{live.url}/board/")
    phone.wait_for_selector(row, timeout=10_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the side
    for selector in (f"{row} a.board-callback", f"{row} button[data-action=acknowledge]"):
        box = phone.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.screenshot(path=str(ARTIFACTS / "02b-emergency-phone.png"), full_page=True)
    phone.context.close()

    page.click(f"{row} button[data-action=acknowledge]")
    for board in (page, second):
        board.wait_for_selector(row, state="detached", timeout=5_000)
        board.wait_for_selector(f'#ack-rows tr[data-id="{escalation_id}"]', timeout=5_000)
        assert board.inner_text("#open-count") == "0"
        assert board.locator("#board-alert").is_hidden()  # no unacknowledged emergency left
    assert "sam" in second.inner_text(f'#ack-rows tr[data-id="{escalation_id}"]')
    page.screenshot(path=str(ARTIFACTS / "03-acknowledged.png"), full_page=True)
    second.screenshot(path=str(ARTIFACTS / "04-second-board-after-broadcast.png"), full_page=True)

    assert live.run_in_server(_escalation_state, escalation_id)[:2] == ("acknowledged", "sam")

    # Resolving asks for a short note; without one nothing is sent.
    ack_row = f'#ack-rows tr[data-id="{escalation_id}"]'
    page.click(f"{ack_row} button[data-action=resolve]")
    page.wait_for_selector(f"{ack_row} form.board-note input[name=note]")
    page.click(f"{ack_row} button[type=submit]")
    page.wait_for_selector("#board-error:not([hidden])")  # says a note is needed, sends nothing
    assert "note" in page.inner_text("#board-error")
    assert live.run_in_server(_escalation_state, escalation_id)[0] == "acknowledged"
    page.fill(f"{ack_row} input[name=note]", "Called back; the family called 911.")
    page.screenshot(path=str(ARTIFACTS / "05-resolve-note.png"), full_page=True)
    page.click(f"{ack_row} button[type=submit]")
    for board in (page, second):
        board.wait_for_selector(ack_row, state="detached", timeout=5_000)
    assert live.run_in_server(_resolution, escalation_id) == ("resolved", "Called back; the family called 911.")
    assert errors == [] and second_errors == []


def _resolution(escalation_id: str) -> tuple[str, str]:
    escalation = Escalation.objects.get(pk=escalation_id)
    return escalation.status, escalation.resolution_note
