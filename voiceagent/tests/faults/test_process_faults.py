"""The server process killed mid-call (kill -9) and drained for a deploy (SIGUSR1, then it exits by itself)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import httpx
import pytest

from fakes.openai import FakeOpenAI
from voiceagent.tests.faults.clients import phone_call_start, phone_media, stream_ended

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

# Longer than the server's restart can take on a loaded machine: the live callers are silent from the kill until the
# new process answers, and a gap longer than the idle threshold would (rightly) get them reaped too.
REAP_IDLE = 8.0
REAP_SLACK = 60.0
# How long a caller keeps retrying one request across the kill and the restart (a loaded machine restarts slowly).
CALLER_PATIENCE = 120.0


def _report(name: str, **figures: object) -> None:
    print(f"\n[faults] {name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))


class WebCaller:
    """A browser call that forwards each caller transcript as it happens (POST /api/calls/{id}/events), retrying
    each event until acknowledged, across server restarts."""

    def __init__(self, base_url: str, org_key: str) -> None:
        self.base_url = base_url
        self.org_key = org_key
        self.call_id = ""
        self.token = ""
        self.acked: list[str] = []
        self.statuses: list[int] = []
        self.talk_until = float("inf")

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict, ok: int, deadline: float) -> dict:
        headers = {"X-Org-Key": self.org_key, **({"X-Call-Token": self.token} if self.token else {})}
        while True:
            try:
                response = await client.post(self.base_url + path, json=body, headers=headers)
                self.statuses.append(response.status_code)
                if response.status_code == ok:
                    return response.json()
                assert response.status_code in (429, 503), response.text[:300]
            except httpx.HTTPError:
                self.statuses.append(0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} never acknowledged")
            await asyncio.sleep(0.1)

    async def run(self, *, end: bool, items: int | None = None) -> None:
        """Talk until `talk_until` (settable while running) or until `items` events were acknowledged."""
        async with httpx.AsyncClient(timeout=5) as client:
            started = await self._post(
                client, "/api/call/start", {"channel": "web", "caller": {}}, 201, time.monotonic() + CALLER_PATIENCE
            )
            self.call_id, self.token = started["call_id"], started["call_token"]
            while time.monotonic() < self.talk_until and (items is None or len(self.acked) < items):
                item = f"item_{uuid.uuid4().hex[:12]}"
                event = {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item,
                    "content_index": 0,
                    "transcript": f"I would like an appointment ({item[-4:]}).",
                }
                await self._post(
                    client,
                    f"/api/calls/{self.call_id}/events",
                    {"events": [event]},
                    200,
                    time.monotonic() + CALLER_PATIENCE,
                )
                self.acked.append(item)
                await asyncio.sleep(0.2)
            if end:
                await self._post(
                    client,
                    "/api/call/end",
                    {"call_id": self.call_id, "reason": "caller_hangup"},
                    200,
                    time.monotonic() + CALLER_PATIENCE,
                )


def test_a_killed_server_loses_no_acknowledged_segment_and_interrupted_calls_end_with_a_fallback(deployment):
    heartbeat = {"LIVE_CALL_HEARTBEAT_SECONDS": "1", "REAPER_IDLE_SECONDS": str(REAP_IDLE)}
    with FakeOpenAI.start_in_thread(time_scale=0.05, pace=0.0) as fake:
        server = deployment.server(openai_url=fake.base_url, **heartbeat)
        info = deployment.info
        phones = [phone_call_start(server.url, info["number"]) for _ in range(2)]
        assert all(call.call_id for call in phones)
        marks: dict[str, float] = {}

        async def scenario() -> tuple[list[WebCaller], WebCaller]:
            callers = [WebCaller(server.url, info["org_key"]) for _ in range(4)]
            vanishing = WebCaller(server.url, info["org_key"])  # its browser is gone with the server
            tasks = [asyncio.create_task(c.run(end=True)) for c in callers]
            gone = asyncio.create_task(vanishing.run(items=3, end=False))
            tasks.append(gone)
            media_callers = [phone_media(server.ws_url, call, max_seconds=60) for call in phones]
            media = [asyncio.create_task(caller.run()) for caller in media_callers]

            # Kill once every call is under way (not after a fixed time: a loaded machine gets there later).
            def under_way() -> bool:
                return (
                    gone.done()
                    and all(c.acked for c in callers)
                    and all(m.result.sent_frames >= 10 for m in media_callers)
                )

            ready_by = time.monotonic() + CALLER_PATIENCE
            while not under_way():
                assert time.monotonic() < ready_by, "the calls never got under way"
                await asyncio.sleep(0.1)
            marks["kill"] = time.monotonic()
            server.kill()  # kill -9: no goodbye, no call ended, sockets reset
            await asyncio.to_thread(server.start)
            marks["back"] = time.monotonic()
            # The reaper starts once the live callers are talking to the new process again: a restart slower than the
            # idle threshold (a loaded machine) would otherwise get them reaped as well, rightly.
            acked_before = [len(c.acked) for c in callers]
            while not all(len(c.acked) > n for c, n in zip(callers, acked_before, strict=True)):
                assert time.monotonic() < marks["back"] + CALLER_PATIENCE, "the live callers never got through again"
                await asyncio.sleep(0.1)
            await asyncio.to_thread(deployment.manage_process, "reap_calls", "--every", "1", **heartbeat)
            marks["reaper"] = time.monotonic()
            for caller in callers:  # the live callers talk on a little, then hang up
                caller.talk_until = time.monotonic() + 3
            await asyncio.gather(*tasks, *media)
            return callers, vanishing

        callers, vanishing = asyncio.run(scenario())

        # Twilio fetches the <Connect action> URL when the stream dropped: the caller hears staff or voicemail.
        fallbacks = [stream_ended(server.url, call.call_sid).text for call in phones]
        assert all(call.media.closed_by_server for call in phones)
        assert all("<Dial" in twiml or "<Record" in twiml for twiml in fallbacks), fallbacks

        # No acknowledged segment lost or stored twice.
        for caller in [*callers, vanishing]:
            rows = deployment.query(
                "SELECT item_id, count(*) FROM calls_transcriptsegment WHERE call_id = %s GROUP BY item_id",
                (caller.call_id,),
            )
            stored = dict(rows)
            assert all(stored.get(item) == 1 for item in caller.acked), caller.call_id
            assert sum(stored.values()) == len(caller.acked)

        # Interrupted calls (the two phone calls, the vanished browser) reach a terminal state by the reaper.
        interrupted = [call.call_id for call in phones] + [vanishing.call_id]

        def terminal() -> bool:
            rows = deployment.query(
                "SELECT status, end_reason FROM calls_call WHERE id::text = ANY(%s)", (interrupted,)
            )
            return len(rows) == 3 and all(row == ("abandoned", "interrupted") for row in rows)

        deadline = REAP_IDLE + REAP_SLACK
        while not terminal():
            assert time.monotonic() - marks["reaper"] < deadline, (
                "interrupted calls not reaped in time",
                deployment.query(
                    "SELECT channel, status, end_reason, last_activity_at, started_at, now() FROM calls_call "
                    "WHERE id::text = ANY(%s)",
                    (interrupted,),
                ),
            )
            time.sleep(0.2)
        reaped_after = time.monotonic() - marks["kill"]
        finished = deployment.query(
            "SELECT status, end_reason FROM calls_call WHERE id::text = ANY(%s)", ([c.call_id for c in callers],)
        )
        assert finished == [("completed", "caller_hangup")] * len(callers)  # live callers were never reaped
    _report(
        "kill -9",
        acked_segments=sum(len(c.acked) for c in [*callers, vanishing]),
        lost=0,
        duplicated=0,
        restart_to_ready=f"{marks['back'] - marks['kill']:.2f}s",
        interrupted_terminal_after_kill=f"{reaped_after:.1f}s (idle threshold {REAP_IDLE:g}s)",
        fallback=["dial" if "<Dial" in t else "voicemail" for t in fallbacks],
    )


def test_a_drained_server_refuses_new_calls_lets_the_live_one_finish_and_exits_0(deployment, tmp_path):
    scenario = tmp_path / "short_checkup.yaml"
    scenario.write_text(
        json.dumps(
            {  # YAML is a superset of JSON
                "name": "short_checkup",
                "language": "en",
                "greeting": "Thank you for calling.",
                "turns": [
                    {"caller": "Hi, I'd like to book a check-up.", "delay": 1.0, "agent": "Of course. Anything else?"},
                    {
                        "caller": "No, that's all, thanks.",
                        "delay": 1.5,
                        "agent": {"say": "Goodbye!", "tool_calls": [{"end_call": {"reason": "caller finished"}}]},
                    },
                ],
            }
        )
    )
    with FakeOpenAI.start_in_thread(scenario=str(scenario), time_scale=1.0, pace=0.0) as fake:
        server = deployment.server(openai_url=fake.base_url)
        info = deployment.info
        live = phone_call_start(server.url, info["number"])
        marks: dict[str, float] = {}
        refused: dict[str, httpx.Response] = {}
        seen: dict[str, int] = {}

        def web_calls() -> int:
            return deployment.query("SELECT count(*) FROM calls_call WHERE channel = 'web'")[0][0]

        async def scenario_run() -> None:
            media = asyncio.create_task(phone_media(server.ws_url, live, max_seconds=30).run())
            await asyncio.sleep(1.0)  # the call is live on this process
            server.signal(signal.SIGUSR1)  # what `manage.py drain --pid` sends
            marks["drain"] = time.monotonic()
            async with httpx.AsyncClient(timeout=10) as client:
                async with asyncio.timeout(10):  # the signal is handled at once: only an ignored one waits this out
                    while (await client.get(f"{server.url}/readyz")).status_code != 503:
                        await asyncio.sleep(0.05)
                seen["web_calls"] = await asyncio.to_thread(web_calls)
                seen["mints"] = len(fake.requests_to("/realtime/client_secrets"))
                sent = time.monotonic()
                refused["start"] = await client.post(
                    f"{server.url}/api/call/start",
                    json={"channel": "web", "caller": {}},
                    headers={"X-Org-Key": info["org_key"]},
                )
                marks["refusal_latency"] = time.monotonic() - sent  # printed only: a loaded machine may take longer
                refused["mint"] = await client.post(
                    f"{server.url}/api/realtime/session", json={}, headers={"X-Org-Key": info["org_key"]}
                )
                refused["readyz"] = await client.get(f"{server.url}/readyz")
            seen["web_calls_after"] = await asyncio.to_thread(web_calls)
            seen["mints_after"] = len(fake.requests_to("/realtime/client_secrets"))
            refused["voice"] = await asyncio.to_thread(
                lambda: httpx.Response(200, text=phone_call_start(server.url, info["number"]).voice_twiml)
            )
            await media
            marks["call_over"] = time.monotonic()

        asyncio.run(scenario_run())
        code = server.process.wait(15)
        marks["exited"] = time.monotonic()

    for name in ("start", "mint"):
        assert refused[name].status_code == 503, refused[name].text
        assert refused[name].json()["error"]["code"] == "draining" and refused[name].headers["Retry-After"]
    # Refused up front, without doing the work: no call row was created and OpenAI was not asked for a secret.
    assert seen["web_calls_after"] == seen["web_calls"]
    assert seen["mints_after"] == seen["mints"]
    assert refused["readyz"].status_code == 503 and refused["readyz"].json()["status"] == "draining"
    voice = refused["voice"].text
    assert "<Stream" not in voice and ("<Dial" in voice or "<Record" in voice)  # fallback, never a 503 to Twilio
    # The live call was not cut: the agent said goodbye and ended it; then the process left by itself, cleanly.
    rows = deployment.query("SELECT status, end_reason FROM calls_call WHERE id = %s", (live.call_id,))
    assert rows == [("completed", "agent_ended")]
    assert live.media.closed_by_server and not live.media.protocol_errors
    assert code == 0
    _report(
        "drain",
        refusal_latency=f"{marks['refusal_latency'] * 1000:.0f}ms",
        live_call_finished_after_drain=f"{marks['call_over'] - marks['drain']:.1f}s",
        exit_after_call=f"{marks['exited'] - marks['call_over']:.2f}s",
        exit_code=code,
    )
