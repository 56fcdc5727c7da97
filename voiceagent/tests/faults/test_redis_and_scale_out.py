"""Redis down for 30 s during calls, and two server processes sharing PostgreSQL and Redis (with a board socket left
idle for 30 s, which must survive: no time-out may tear down an idle consumer).

Why 30 s: the issue's figure; it is also longer than every Redis-side time-out (socket 10 s, connect 2 s), so a
process that only survived short blips would fail here."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from fakes.openai import FakeOpenAI
from voiceagent.tests.faults.clients import BoardWatcher, phone_call_start, phone_media
from voiceagent.tests.faults.harness import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

OUTAGE_SECONDS = 30.0
# How soon after Redis returns the board must have caught up: generous, a loaded 2-core machine must make it every time
# (on an idle machine it takes well under a second; a board that never reconnects misses any bound).
CATCH_UP_SECONDS = 30.0
CHEST_PAIN = "My dad has crushing chest pain and his left arm is numb."


def _report(name: str, **figures: object) -> None:
    print(f"\n[faults] {name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))


def long_scenario(path, turn_delay: float) -> str:
    """A routine call whose caller takes `turn_delay` s per turn and the agent ends it: spans the outage."""
    turns: list[dict[str, Any]] = [
        {"caller": line, "delay": turn_delay, "agent": "I see. Please go on."}
        for line in (
            "Hi, I'd like to book a check-up.",
            "It's for my annual physical.",
            "Mornings work best for me.",
            "I'm with Blue Shield.",
            "My number is on file.",
        )
    ]
    turns.append(
        {
            "caller": "That's everything, thank you.",
            "delay": 1.0,
            "agent": {"say": "Goodbye!", "tool_calls": [{"end_call": {"reason": "caller finished"}}]},
        }
    )
    path.write_text(
        json.dumps(
            {
                "name": "long_checkup",
                "language": "en",
                "greeting": "Thank you for calling.",
                "hangup_after": None,
                "turns": turns,
            }
        )
    )
    return str(path)


async def caller_post(client: httpx.AsyncClient, url: str, body: dict, headers: dict) -> httpx.Response:
    return await client.post(url, json=body, headers=headers)


def chest_pain_event(n: int) -> dict:
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": f"item_pain_{n}",
        "content_index": 0,
        "transcript": CHEST_PAIN,
    }


def test_redis_down_for_30s_keeps_live_calls_and_call_paths_up_and_the_board_catches_up(deployment, tmp_path):
    redis = deployment.start_redis()
    scenario = long_scenario(tmp_path / "long.yaml", turn_delay=7.0)
    with FakeOpenAI.start_in_thread(scenario=scenario, time_scale=1.0, pace=0.0) as fake:
        server = deployment.server(openai_url=fake.base_url)
        deployment.manage_process("deliver_notifications", "--interval", "0.5")
        info = deployment.info
        key = {"X-Org-Key": info["org_key"]}
        board = BoardWatcher(server.ws_url, server.url, info["session"])
        phone = phone_call_start(server.url, info["number"])
        marks: dict[str, float] = {}
        answers: list[tuple[str, int, str]] = []

        def answer(path: str, response: httpx.Response) -> tuple[str, int, str]:
            code = ""
            if response.status_code >= 400:
                try:
                    code = str(response.json().get("error", {}).get("code", ""))
                except ValueError:
                    code = "not-json"
            return (path, response.status_code, code)

        escalated_calls: list[str] = []

        async def during_outage(client: httpx.AsyncClient) -> None:
            """Every call path, repeatedly, while Redis is down: start, mint, forward events (an emergency), end."""
            n = 0
            while time.monotonic() < marks["redis_down"] + OUTAGE_SECONDS - 2:
                n += 1
                started = await client.post(
                    f"{server.url}/api/call/start", json={"channel": "web", "caller": {}}, headers=key
                )
                answers.append(answer("call/start", started))
                minted = await client.post(f"{server.url}/api/realtime/session", json={}, headers=key)
                answers.append(answer("realtime/session", minted))
                if started.status_code == 201:
                    body = started.json()
                    call_headers = {**key, "X-Call-Token": body["call_token"]}
                    events = await client.post(
                        f"{server.url}/api/calls/{body['call_id']}/events",
                        json={"events": [chest_pain_event(n)]},
                        headers=call_headers,
                    )
                    answers.append(answer("events", events))
                    if events.status_code == 200 and len(escalated_calls) < 3:
                        escalated_calls.append(body["call_id"])
                    ended = await client.post(
                        f"{server.url}/api/call/end",
                        json={"call_id": body["call_id"], "reason": "caller_hangup"},
                        headers=call_headers,
                    )
                    answers.append(answer("call/end", ended))
                await asyncio.sleep(1.0)

        async def run() -> None:
            board_task = asyncio.create_task(board.run())
            media = asyncio.create_task(phone_media(server.ws_url, phone, max_seconds=90).run())
            async with httpx.AsyncClient(timeout=10) as client:
                # The browser call: our call, an upstream WebRTC call, and the server's sideband attached to it.
                started = (
                    await client.post(
                        f"{server.url}/api/call/start", json={"channel": "web", "caller": {}}, headers=key
                    )
                ).json()
                marks["web_call"] = started["call_id"]
                rtc = fake.register_call(scenario=scenario)
                attached = await client.post(
                    f"{server.url}/api/calls/{started['call_id']}/realtime",
                    json={"openai_call_id": rtc},
                    headers={**key, "X-Call-Token": started["call_token"]},
                )
                assert attached.status_code == 202, attached.text
                await asyncio.sleep(3)
                assert board.connects == 1
                redis.kill()
                marks["redis_down"] = time.monotonic()
                await during_outage(client)
                await asyncio.sleep(max(0.0, marks["redis_down"] + OUTAGE_SECONDS - time.monotonic()))
                redis.start()
                marks["redis_up"] = time.monotonic()
                deadline = time.monotonic() + CATCH_UP_SECONDS
                while not set(escalated_calls) <= seen_calls() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                marks["board_caught_up"] = time.monotonic()
            await media
            board.stop()
            await board_task
            try:
                await asyncio.to_thread(
                    wait_until,
                    lambda: (
                        len(
                            deployment.query(
                                "SELECT 1 FROM calls_call WHERE id::text = ANY(%s) AND status <> 'in_progress'",
                                ([phone.call_id, marks["web_call"]],),
                            )
                        )
                        == 2
                    ),
                    30,
                    0.2,
                    "both live calls ended",
                )
            except TimeoutError:
                calls = deployment.query(
                    "SELECT channel, status, end_reason, (SELECT count(*) FROM calls_transcriptsegment s "
                    "WHERE s.call_id = c.id) FROM calls_call c WHERE id::text = ANY(%s)",
                    ([phone.call_id, marks["web_call"]],),
                )
                sessions = [
                    (x.kind, x.call_id, x.script_done.is_set(), x.ended.is_set(), x.violations[:2])
                    for x in fake.sessions
                ]
                log = server.log_text()[-3000:]
                raise AssertionError(f"live calls did not end: {calls} {sessions}\n{log}") from None

        def seen_calls() -> set[str]:
            ids = list(board.seen)
            if not ids:
                return set()
            rows = deployment.query("SELECT call_id::text FROM calls_escalation WHERE id::text = ANY(%s)", (ids,))
            return {row[0] for row in rows}

        asyncio.run(run())

    # Call paths: no 5xx from Redis being down (throttles fail open to a per-process count). A loaded machine may shed
    # a request the documented way (503 deadline_exceeded, or 504 when the fake upstream answered too late); that is
    # load, not the outage, so it is allowed, but each path must also have succeeded during the outage.
    shed = {(503, "deadline_exceeded"), (504, "upstream_timeout")}
    assert answers and not [a for a in answers if a[1] >= 500 and (a[1], a[2]) not in shed], answers
    assert {a[0] for a in answers if a[1] < 400} == {"call/start", "realtime/session", "events", "call/end"}, answers
    assert {a[0] for a in answers} == {"call/start", "realtime/session", "events", "call/end"}
    # Escalations raised during the outage reached the board soon after Redis returned (reconnect snapshot).
    assert escalated_calls and set(escalated_calls) <= seen_calls()
    caught_up = marks["board_caught_up"] - marks["redis_up"]
    assert caught_up <= CATCH_UP_SECONDS
    # The live calls went on through the outage and ended normally (the agent said goodbye), not by an error.
    rows = deployment.query(
        "SELECT id::text, status, end_reason FROM calls_call WHERE id::text = ANY(%s)",
        ([phone.call_id, marks["web_call"]],),
    )
    assert sorted((status, reason) for _id, status, reason in rows) == [("completed", "agent_ended")] * 2
    assert not phone.media.protocol_errors
    outbox = deployment.query("SELECT status, count(*) FROM calls_notification GROUP BY status")
    _report(
        "redis down 30s",
        call_path_requests=len(answers),
        call_path_shed=len([a for a in answers if a[1] >= 500]),
        board_caught_up_after_redis_back=f"{caught_up:.2f}s",
        board_reconnects=board.connects,
        live_calls_ended_normally=2,
        outbox=dict(outbox),
    )


def test_two_processes_share_calls_escalations_and_throttles_and_an_idle_board_survives_30s(deployment):
    deployment.start_redis()
    limits = {"THROTTLE_CALLER_IP_RATE": "8/day"}  # a day-long window: the test cannot straddle a reset
    a = deployment.server("a", **limits)
    b = deployment.server("b", **limits)
    info = deployment.info
    key = {"X-Org-Key": info["org_key"]}
    board = BoardWatcher(b.ws_url, b.url, info["session"])
    results: dict[str, Any] = {}  # what the async scenario saw, read by the asserts below

    async def run() -> None:
        board_task = asyncio.create_task(board.run())
        async with httpx.AsyncClient(timeout=10) as client:
            # A call started on one process is ended on the other.
            started = (
                await client.post(f"{a.url}/api/call/start", json={"channel": "web", "caller": {}}, headers=key)
            ).json()
            call_headers = {**key, "X-Call-Token": started["call_token"]}
            ended = await client.post(
                f"{b.url}/api/call/end",
                headers=call_headers,
                json={
                    "call_id": started["call_id"],
                    "reason": "caller_hangup",
                    "transcript": [{"speaker": "caller", "text": "Thanks.", "item_id": "item_x1"}],
                },
            )
            results["ended"] = ended
            # The board on B stays connected through 30 s of quiet (redis-py 8 socket_timeout regression).
            await asyncio.sleep(30)
            results["connects_after_idle"] = board.connects
            # An escalation raised on A reaches the board socket on B.
            second = (
                await client.post(f"{a.url}/api/call/start", json={"channel": "web", "caller": {}}, headers=key)
            ).json()
            sent = time.monotonic()
            raised = await client.post(
                f"{a.url}/api/calls/{second['call_id']}/events",
                json={"events": [chest_pain_event(1)]},
                headers={**key, "X-Call-Token": second["call_token"]},
            )
            results["raised"] = raised
            # Wait for the push (~0.7 s on an idle machine, printed); only a push that never comes waits 15 s.
            while not [m for m in board.messages if m.get("type") == "escalation"] and time.monotonic() - sent < 15:
                await asyncio.sleep(0.05)
            results["push_latency"] = time.monotonic() - sent
            results["pushes"] = [m for m in board.messages if m.get("type") == "escalation"]
            # Throttles count across both processes: 4 caller requests so far, 8 allowed per client per day.
            burst = []
            for n in range(10):
                server = a if n % 2 == 0 else b
                response = await client.post(
                    f"{server.url}/api/call/start", json={"channel": "web", "caller": {}}, headers=key
                )
                burst.append((response.status_code, response.headers.get("Retry-After")))
            results["burst"] = burst
        board.stop()
        await board_task

    asyncio.run(run())
    assert results["ended"].status_code == 200, results["ended"].text
    assert results["ended"].json()["status"] == "completed"
    assert results["connects_after_idle"] == 1 and not board.drops
    assert results["raised"].status_code == 200
    pushes = results["pushes"]
    assert pushes and pushes[0]["escalation"]["level"] == "emergency" and board.connects == 1
    burst = results["burst"]
    assert [status for status, _ in burst].count(201) == 4
    assert all(status == 429 and retry for status, retry in burst if status != 201)
    _report(
        "two processes",
        end_on_other_process=200,
        idle_board_30s="survived",
        escalation_push_a_to_b=f"{results['push_latency'] * 1000:.0f}ms",
        throttle_burst=f"{[s for s, _ in burst].count(201)} of 10 allowed (limit 8/day, 4 used before)",
    )
