"""Clients the fault suite plays: callers that start and end calls through the real API and retry until acknowledged,
a reconnecting board socket, and a phone caller through the fake Twilio."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakes.simulate_phone import ScriptedCaller, _stream_parameters
from fakes.twilio.media import MediaStreamResult
from fakes.twilio.testing import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from fakes.twilio.webhooks import WebhookClient, new_call_sid


@dataclass
class Answer:
    path: str
    sent: float  # monotonic
    done: float
    status: int  # 0: no HTTP answer (connection error or client time-out)
    retry_after: str | None
    code: str = ""

    @property
    def latency(self) -> float:
        return self.done - self.sent


@dataclass
class CallerLoad:
    """Callers that each start a call, end it with `segments` transcript segments (unique item ids), and retry every
    request until it is acknowledged. `acked` maps call ids to the item ids the server acknowledged."""

    base_urls: list[str]
    org_key: str
    segments: int = 3
    timeout: float = 10.0
    answers: list[Answer] = field(default_factory=list)
    acked: dict[str, list[str]] = field(default_factory=dict)
    stop_at: float = 0.0

    async def _request(self, client: httpx.AsyncClient, url: str, body: dict, headers: dict) -> httpx.Response | None:
        sent = time.monotonic()
        try:
            response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError:
            self.answers.append(Answer(url.split("/api/", 1)[-1], sent, time.monotonic(), 0, None))
            return None
        code = ""
        if response.status_code >= 400:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = response.text[:40]
        self.answers.append(
            Answer(
                url.split("/api/", 1)[-1],
                sent,
                time.monotonic(),
                response.status_code,
                response.headers.get("Retry-After"),
                code,
            )
        )
        return response

    async def _until_acked(self, client, urls, path: str, body: dict, headers: dict, ok: int) -> dict | None:
        attempt = 0
        while True:
            url = urls[attempt % len(urls)] + path
            attempt += 1
            response = await self._request(client, url, body, headers)
            if response is not None and response.status_code == ok:
                return response.json()
            if response is not None and response.status_code < 500 and response.status_code != 429:
                raise AssertionError(f"{path} answered {response.status_code}: {response.text[:300]}")
            if time.monotonic() > self.stop_at + 30:
                return None  # the service never came back: the test's assertions say so
            await asyncio.sleep(0.1)

    async def _caller(self, index: int) -> None:
        headers = {"X-Org-Key": self.org_key}
        urls = self.base_urls[index % len(self.base_urls) :] + self.base_urls[: index % len(self.base_urls)]
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while time.monotonic() < self.stop_at:
                started = await self._until_acked(
                    client, urls, "/api/call/start", {"channel": "web", "caller": {}}, headers, 201
                )
                if started is None:
                    return
                items = [f"item_{uuid.uuid4().hex[:12]}" for _ in range(self.segments)]
                body = {
                    "call_id": started["call_id"],
                    "reason": "caller_hangup",
                    "transcript": [
                        {"speaker": "caller", "text": f"segment {n}", "item_id": item} for n, item in enumerate(items)
                    ],
                }
                call_headers = {**headers, "X-Call-Token": started["call_token"]}
                ended = await self._until_acked(client, urls[::-1], "/api/call/end", body, call_headers, 200)
                if ended is None:
                    return
                self.acked[started["call_id"]] = items

    async def run(self, callers: int, seconds: float) -> None:
        self.stop_at = time.monotonic() + seconds
        await asyncio.gather(*(self._caller(n) for n in range(callers)))


def check_acked_segments(deployment, acked: dict[str, list[str]]) -> tuple[int, int]:
    """(missing, duplicated) acknowledged segments, counted in the database."""
    rows = deployment.query(
        "SELECT call_id::text, item_id, count(*) FROM calls_transcriptsegment WHERE call_id::text = ANY(%s) "
        "GROUP BY call_id, item_id",
        (list(acked),),
    )
    stored = {(call_id, item): count for call_id, item, count in rows}
    missing = sum(1 for call_id, items in acked.items() for item in items if (call_id, item) not in stored)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    return missing, duplicated


# --- the live board ---------------------------------------------------------------------------------------------


@dataclass
class BoardWatcher:
    """A staff browser on the board: reconnects (every `backoff` s) whenever its socket drops, like board.js, and
    notes when each escalation id was first seen (snapshot or push)."""

    ws_url: str
    origin: str
    session: str
    backoff: float = 0.5
    seen: dict[str, float] = field(default_factory=dict)
    connects: int = 0
    drops: list[tuple[float, int | None]] = field(default_factory=list)  # (when, close code)
    messages: list[dict] = field(default_factory=list)
    _stop: asyncio.Event | None = None

    async def run(self) -> None:
        self._stop = asyncio.Event()
        headers = {"Cookie": f"sessionid={self.session}", "Origin": self.origin}
        while not self._stop.is_set():
            try:
                async with connect(f"{self.ws_url}/ws/board/", additional_headers=headers, open_timeout=3) as ws:
                    self.connects += 1
                    while not self._stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.2)
                        except TimeoutError:
                            continue
                        self._note(json.loads(raw))
                    return
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError) as exc:
                close = exc.rcvd if isinstance(exc, ConnectionClosed) else None  # the server's close frame, if any
                self.drops.append((time.monotonic(), close.code if close else None))
            await asyncio.sleep(self.backoff)

    def _note(self, message: dict) -> None:
        self.messages.append(message)
        now = time.monotonic()
        items = message.get("escalations", []) if message.get("type") == "snapshot" else [message.get("escalation")]
        for item in items:
            if item and item.get("id"):
                self.seen.setdefault(item["id"], now)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()


# --- a phone caller ---------------------------------------------------------------------------------------------


@dataclass
class PhoneCall:
    call_sid: str
    call_id: str
    voice_twiml: str
    caller: ScriptedCaller | None = None

    @property
    def media(self) -> MediaStreamResult:
        """What the call's media stream saw (once phone_media has started it)."""
        assert self.caller is not None, "phone_media() was not called for this call"
        return self.caller.result


def phone_call_start(server_url: str, number: str, caller: str = "+14155550199") -> PhoneCall:
    """The incoming-call webhook, as Twilio sends it; returns the TwiML's call id (or "" for a non-stream answer)."""
    call_sid = new_call_sid()
    with WebhookClient(
        server_url=server_url, public_base_url=TEST_PUBLIC_BASE_URL, auth_token=TEST_AUTH_TOKEN
    ) as webhooks:
        answer = webhooks.voice(call_sid=call_sid, caller=caller, called=number)
    answer.raise_for_status()
    try:
        _url, params = _stream_parameters(answer.text)
    except ValueError:
        return PhoneCall(call_sid, "", answer.text)
    return PhoneCall(call_sid, params.get("call_id", ""), answer.text)


def phone_media(server_ws_url: str, call: PhoneCall, *, max_seconds: float) -> ScriptedCaller:
    """Twilio's media stream for `call`: 20 ms frames of silence until the server closes it or `max_seconds`."""
    stream_url, params = _stream_parameters(call.voice_twiml)
    holder: dict[str, ScriptedCaller] = {}

    async def hang_up() -> bool:
        return holder["caller"].result.closed_by_server

    caller = ScriptedCaller(
        f"{server_ws_url}/twilio/media",
        hang_up=hang_up,
        max_seconds=max_seconds,
        auth_token=TEST_AUTH_TOKEN,
        stream_token=params.get("stream_token"),
        call_id=params.get("call_id", ""),
        call_sid=call.call_sid,
        signature_url=stream_url,
        fast_marks=True,
        linger_seconds=0.5,
    )
    holder["caller"] = caller
    call.caller = caller
    return caller


def stream_ended(server_url: str, call_sid: str, timeout: float = 20.0) -> httpx.Response:
    """What Twilio does when a media stream drops: fetch the <Connect action> URL (retried until a server answers)."""
    deadline = time.monotonic() + timeout
    with WebhookClient(
        server_url=server_url, public_base_url=TEST_PUBLIC_BASE_URL, auth_token=TEST_AUTH_TOKEN, timeout=5
    ) as webhooks:
        while True:
            try:
                return webhooks.stream_ended(call_sid=call_sid)
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
