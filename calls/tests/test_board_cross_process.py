"""The board across processes under the embedded defaults, as `make run` runs it: `manage.py serve` on a SQLite file
and the in-memory channel layer (no REDIS_URL), with its notification worker and reaper beside it. An escalation
raised by a second process (a `manage.py shell` here, as `simulate_call` would) reaches an open board socket, which
it could not through the in-memory layer alone (the board polls the outbox). Stopping the server stops its workers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from voiceagent.tests.faults.harness import ROOT, _children, app_env, free_port, manage, seed, wait_until

pytestmark = [pytest.mark.slow]

ARRIVAL_TIMEOUT = 60.0  # a hang guard on a loaded 2-core machine: asserts arrival, not speed (2 s when idle)

RAISE = """
import datetime as dt
from django.utils import timezone
from calls.models import Call
from calls.services import call_start, escalation_create
from organizations.models import Organization
clinic = Organization.objects.get(slug="fault-clinic")
started = timezone.now() - dt.timedelta(minutes=1)
call, _token = call_start(organization=clinic, channel=Call.Channel.WEB, started_at=started)
escalation, _created = escalation_create(call=call, level="emergency", source="keyword", reason="chest_pain")
print("ESCALATION", escalation.pk)
"""


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    env = app_env(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", redis_url="")
    env.pop("REDIS_URL")  # the embedded default: no Redis at all
    return env


async def _watch(url: str, session: str, until: str) -> tuple[list[dict], str]:
    """Open the board and read until the escalation `until` (read from the file it names) was pushed."""
    headers = {"Cookie": f"sessionid={session}", "Origin": url.replace("ws://", "http://")}
    messages: list[dict] = []
    async with connect(f"{url}/ws/board/", additional_headers=headers, open_timeout=30) as ws:
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        raised = await asyncio.to_thread(_raise_elsewhere, until)
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while time.monotonic() < deadline:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1))
            except TimeoutError:
                continue
            messages.append(message)
            if message.get("type") == "escalation" and message["escalation"]["id"] == raised:
                break
    return messages, raised


def _raise_elsewhere(env_json: str) -> str:
    env = json.loads(env_json)
    out = manage(env, "shell", "-c", RAISE)
    return out.split("ESCALATION", 1)[1].split()[0]


def test_an_escalation_raised_by_another_process_reaches_the_open_board_without_redis(tmp_path):
    env = _embedded_env(tmp_path)
    manage(env, "migrate", "--noinput")
    info = seed(env)
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
            120,
            interval=0.2,
            what="serve accepting requests",
        )
        workers = _children(server.pid)
        commands = {" ".join(Path(f"/proc/{pid}/cmdline").read_text().split("\0")[2:]).strip() for pid in workers}
        assert commands >= {"deliver_notifications", "reap_calls --every 30"}

        messages, raised = asyncio.run(_watch(f"ws://127.0.0.1:{port}", info["session"], json.dumps(env)))
        assert messages[0]["type"] == "snapshot"
        pushed = [m for m in messages if m.get("type") == "escalation" and m["escalation"]["id"] == raised]
        assert pushed, f"the escalation never reached the board: {messages}"
        assert pushed[0]["escalation"]["level"] == "emergency"

        server.send_signal(signal.SIGINT)  # Ctrl-C: the server stops, and its workers with it
        try:
            # Generous: daphne lets open connections close (10 s), then each worker gets SIGTERM and up to 10 s.
            server.wait(120)
        except subprocess.TimeoutExpired:
            log.flush()
            tail = (tmp_path / "serve.log").read_bytes()[-4000:].decode(errors="replace")
            raise AssertionError(f"serve did not stop on Ctrl-C; its log ends:\n{tail}") from None
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 30, what="workers stopped")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        log.close()
