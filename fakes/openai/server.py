"""The fake OpenAI Realtime GA server: REST and WebSocket on one port (aiohttp), loopback by default.

    async with FakeOpenAI(scenario="routine_booking", time_scale=0.01) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
        ...
        assert fake.requests[0].body["session"]["type"] == "realtime"

See README.md in this package for the endpoints, failure modes and what is not modelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.parser
import email.policy
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from aiohttp import WSMsgType, web

from .protocol import (
    BETA_CODE,
    CLOCK,
    DEFAULT_MODEL,
    REALTIME_MODELS,
    ProtocolError,
    check_not_retired,
    client_secret_body_check,
    default_session,
    invalid_value,
    merge_session,
    missing_parameter,
    new_call_id,
    new_id,
    validate_session,
)
from .responses import create_response
from .scenarios import Scenario, load_scenario
from .session import RealtimeSession, SessionLog, run_echo

log = logging.getLogger("fakes.openai")

FailureKind = Literal["error", "server_error", "rate_limit", "hang", "slow_body", "malformed_json", "close"]
_SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
_JSON_PARSE_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library "
    "correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
# Every Realtime session ends here, whatever is going on (close code 1001, "going away").
SESSION_LIMIT_SECONDS = 60 * 60.0
SESSION_LIMIT_CLOSE = 1001
SESSION_LIMIT_REASON = "Your session hit the maximum duration of 60 minutes."


@dataclass
class Failure:
    """How REST requests to `path` fail, to test a client's error mapping.

    kind: error (status 4xx with an OpenAI error body), server_error (5xx), rate_limit (429 + retry-after),
    hang (accept, never answer), slow_body (a correct 200 whose body trickles out, `delay` seconds per chunk),
    malformed_json (200 with a truncated JSON body), close (drop the connection without answering).
    times: fail this many matching requests, then behave normally (None: every request).
    """

    kind: FailureKind
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float = 1.0
    delay: float = 0.5
    times: int | None = None
    path: str = "/v1/realtime/client_secrets"  # "*" for every REST endpoint

    @classmethod
    def from_dict(cls, data: dict) -> Failure:
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown failure fields {sorted(unknown)}")
        failure = cls(**data)
        if failure.kind not in get_args(FailureKind):
            raise ValueError(f"unknown failure kind {failure.kind!r}")
        return failure


@dataclass
class RecordedRequest:
    """One HTTP request (REST or WebSocket handshake) as received. The Authorization value is never kept."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was not JSON
    raw: bytes
    auth: str | None  # "standard", "ephemeral", "invalid" or None (no Authorization)
    at: float = field(default_factory=time.time)


@dataclass
class ClientSecret:
    value: str
    expires_at: int
    session: dict


@dataclass
class CallRecord:
    """A WebRTC call (from POST /realtime/calls), a SIP call (`place_sip_call`) or one a test registered, which a
    sideband socket can attach to (once active)."""

    call_id: str
    session: dict
    scenario: Scenario | None
    created_via: str  # "webrtc", "webrtc_unified", "sip" or "registered"
    sdp_offer: str | None = None
    state: str = "active"  # "incoming" (SIP, ringing), "active", "rejected" or "ended"
    reject_status: int | None = None  # SIP: the status the call was rejected with
    refer_targets: list[str] = field(default_factory=list)  # SIP: where REFER sent it (accepted refers only)
    engine: RealtimeSession | None = None
    log: SessionLog | None = None


TODAY_ENV = "FAKE_OPENAI_TODAY"


def clock_for(today: dt.date | str | None) -> Callable[[], float]:
    """A clock (seconds since the epoch) that reads `today` now and runs on in real time; time.time without one."""
    if today is None or today == "":
        return time.time
    if isinstance(today, str):
        try:
            today = dt.date.fromisoformat(today)
        except ValueError:
            raise ValueError(f"{TODAY_ENV} / today must be a date like 2027-02-26, not {today!r}") from None
    offset = (today - dt.datetime.now(dt.UTC).date()).days * 86400
    return lambda: time.time() + offset


class FakeOpenAI:
    """A protocol-faithful fake of the OpenAI Realtime GA API (see module docstring and README)."""

    def __init__(
        self,
        *,
        scenario: str | Path | Scenario | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        time_scale: float = 1.0,
        pace: float = 0.5,
        answer_timeout: float = 10.0,
        failure: Failure | None = None,
        echo: bool = False,
        session_limit: float = SESSION_LIMIT_SECONDS,
        today: dt.date | str | None = None,
    ) -> None:
        """
        scenario: the script played by every session that has none of its own (None: no caller, default replies).
        api_key: the only standard key accepted (None: any bearer token that is not an `ek_` key).
        time_scale: multiplies every scripted delay, caller speech time and audio pacing (0.01 for fast tests).
        pace: audio is streamed at `pace` x real time (0.5 = twice as fast as it plays, like the real API).
        answer_timeout: real seconds the caller script waits for a tool round trip before recording a violation.
        echo: benchmark mode; every input_audio_buffer.append is echoed as a response.output_audio.delta.
        session_limit: real seconds after which a session is closed with 1001 (the API's 60-minute cap).
        today: the fake's date (a date or "YYYY-MM-DD"; default: env FAKE_OPENAI_TODAY, else the real date). Its
            clock runs on from that day, so models past their shutdown date are refused as the real API would
            (at client_secrets, at the ?model= handshake, in session.update).
        """
        self.scenario = load_scenario(scenario) if scenario is not None else None
        self.host = host
        self.port = port
        self.api_key = api_key
        self.time_scale = time_scale
        self.pace = pace
        self.answer_timeout = answer_timeout
        self.failure = failure
        self.echo = echo
        self.session_limit = session_limit
        self.requests: list[RecordedRequest] = []
        self.sessions: list[SessionLog] = []
        self.calls: dict[str, CallRecord] = {}
        self.client_secrets: dict[str, ClientSecret] = {}
        # SIP: POST …/refer answers this HTTP status with an error body instead of transferring (None: it transfers).
        self.refer_failure_status: int | None = None
        # Tests may move time forward: to expire secrets, or past a model's shutdown date.
        self.clock: Callable[[], float] = clock_for(today if today is not None else os.environ.get(TODAY_ENV))
        self._runner: web.AppRunner | None = None
        self._engines: list[RealtimeSession] = []
        self._stopping: asyncio.Event | None = None
        self._background: set[asyncio.Task] = set()

    # --- lifecycle ------------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """REST base, what `AsyncOpenAI(base_url=...)` and OPENAI_BASE_URL take: http://HOST:PORT/v1"""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def websocket_base_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    async def start(self) -> FakeOpenAI:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the bound port when port=0
        log.info("fake OpenAI listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for engine in list(self._engines):
            await engine.close(code=1001, message="server shutting down")
        for task in list(self._background):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    def start_in_thread(cls, **kwargs: Any) -> FakeOpenAIThread:
        """Run a fake on its own event loop in a daemon thread (for sync tests, `make run`, the simulator)."""
        return FakeOpenAIThread(cls(**kwargs))

    # --- test API -------------------------------------------------------------------------------------------------

    def register_call(
        self, call_id: str | None = None, *, scenario: str | Path | Scenario | None = None, session: dict | None = None
    ) -> str:
        """Pre-register a call a sideband socket can attach to (`GET /v1/realtime?call_id=...`); returns its id.

        session: a GA session (validated) to start from; scenario: the call's script (default: the server's)."""
        call_id = call_id or new_call_id()
        token = CLOCK.set(self._now)
        try:
            clean = validate_session(session, beta_code=BETA_CODE) if session is not None else {"type": "realtime"}
        finally:
            CLOCK.reset(token)
        effective = merge_session(self._new_session(clean.get("model", DEFAULT_MODEL)), clean)
        self.calls[call_id] = CallRecord(
            call_id=call_id,
            session=effective,
            scenario=load_scenario(scenario) if scenario is not None else self.scenario,
            created_via="registered",
        )
        return call_id

    async def place_sip_call(
        self,
        webhook_url: str,
        secret: str,
        *,
        to: str,
        caller: str = "+16175550123",
        scenario: str | Path | Scenario | None = None,
        webhook_id: str | None = None,
        deliveries: int = 1,
    ) -> SipDelivery:
        """A phone call reaching the project over SIP: the call rings here (`incoming`) and the signed
        `realtime.call.incoming` is POSTed to `webhook_url`, `deliveries` times with the same `webhook-id` (a
        retry). The project then accepts or rejects it, and attaches its sideband, which plays `scenario`."""
        import aiohttp

        from .webhooks import encode, incoming_call_event, signed_headers

        call_id = new_call_id()
        self.calls[call_id] = CallRecord(
            call_id=call_id,
            session=self._new_session(DEFAULT_MODEL),
            scenario=load_scenario(scenario) if scenario is not None else self.scenario,
            created_via="sip",
            state="incoming",
        )
        body = encode(incoming_call_event(call_id, to=to, caller=caller, created_at=int(self.clock())))
        delivery = SipDelivery(call_id=call_id, webhook_id=webhook_id or new_id("wh"), body=body)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
            for _ in range(deliveries):
                # Each delivery is signed afresh (a new timestamp), under the same webhook-id.
                headers = signed_headers(secret, body, webhook_id=delivery.webhook_id)
                async with client.post(webhook_url, data=body, headers=headers, allow_redirects=False) as response:
                    delivery.statuses.append(response.status)
                    delivery.answers.append(await response.text())
        return delivery

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path is `path` (with or without the /v1 prefix)."""
        full = path if path.startswith("/v1") else "/v1" + path
        return [r for r in self.requests if r.path == full]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll `predicate` until true; raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout:.1f}s")
            await asyncio.sleep(0.005)

    # --- HTTP -----------------------------------------------------------------------------------------------------

    def _now(self) -> float:
        """The fake's clock as validation reads it (through protocol.CLOCK), so tests can reassign `clock`."""
        return self.clock()

    def _new_session(self, model: str, expires_at: int | None = None) -> dict:
        now = int(self.clock())
        return default_session(model=model, session_id=new_id("sess"), expires_at=expires_at or now + 3600)

    def _auth(self, request: web.Request) -> tuple[str | None, str | None]:
        """(kind, token) where kind is standard/ephemeral/invalid or None without credentials."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None:
            for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("openai-insecure-api-key."):
                    token = proto.removeprefix("openai-insecure-api-key.")
        if not token:
            return None, None
        if token.startswith("ek_"):
            secret = self.client_secrets.get(token)
            ok = secret is not None and secret.expires_at > self.clock()
            return ("ephemeral" if ok else "invalid"), token
        if (self.api_key is None and token) or token == self.api_key:
            return "standard", token
        return "invalid", token

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read() if request.can_read_body else b""
        body = None
        if raw and "json" in request.content_type:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in request.headers.items()}
        headers.pop("Sec-WebSocket-Protocol", None)  # may carry a key (browser subprotocol auth)
        kind, _ = self._auth(request)
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            body=body,
            raw=raw,
            auth=kind,
        )
        self.requests.append(recorded)
        return recorded

    @staticmethod
    def _error(exc: ProtocolError, headers: dict | None = None) -> web.Response:
        return web.json_response(exc.body(), status=exc.status, headers=headers)

    def _auth_error(self, kind: str | None, token: str | None) -> ProtocolError:
        if kind is None:
            return ProtocolError(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
                status=401,
            )
        if token and token.startswith("ek_"):
            return ProtocolError("Ephemeral key is invalid or has expired.", code="invalid_api_key", status=401)
        shown = f"{token[:3]}***{token[-4:]}" if token and len(token) > 8 else "***"
        return ProtocolError(
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
            status=401,
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        CLOCK.set(self._now)  # this request's (and socket's) validation reads the fake's clock
        path = request.path
        if path.startswith("/_fake/"):
            return await self._control(request)
        if request.method == "OPTIONS" and path.startswith("/v1/"):
            return _preflight(request)  # a browser's CORS check, not an API request: not recorded
        response = await self._dispatch_api(request)
        if request.headers.get("Origin") and not response.prepared:
            response.headers.update(_CORS_HEADERS)
        return response

    async def _dispatch_api(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        recorded = await self._record(request)
        if path == "/v1/realtime" and request.method == "GET":
            return await self._websocket(request)
        failure = self.failure
        if failure is not None and failure.path in ("*", path) and failure.times != 0:
            if failure.times is not None:
                failure.times -= 1
            return await self._fail(request, failure)
        kind, token = self._auth(request)
        if kind not in ("standard", "ephemeral"):
            return self._error(self._auth_error(kind, token))
        if "realtime=v1" in request.headers.get("OpenAI-Beta", ""):
            return self._error(_beta_header_error())
        try:
            if request.method != "POST":
                raise ProtocolError(f"Invalid URL ({request.method} {path})", code=None, status=404)
            if path == "/v1/realtime/client_secrets":
                return self._client_secrets(recorded, kind)
            if path in ("/v1/realtime/sessions", "/v1/realtime/transcription_sessions"):
                raise ProtocolError(
                    f"The Realtime API beta has been shut down: POST {path} is no longer available. Use POST "
                    '/v1/realtime/client_secrets with a GA session (session.type = "realtime").',
                    code=BETA_CODE,
                )
            if path == "/v1/responses":
                if kind != "standard":
                    raise ProtocolError("Ephemeral keys cannot create responses.", code="invalid_api_key", status=401)
                return web.json_response(create_response(self._json_body(recorded), now=self.clock()))
            if path == "/v1/realtime/calls":
                return self._create_call(request, recorded, kind, token)
            parts = path.split("/")  # ['', 'v1', 'realtime', 'calls', id, action]
            if len(parts) == 6 and parts[3] == "calls":
                return self._call_action(parts[4], parts[5], recorded, kind)
            raise ProtocolError(f"Invalid URL ({request.method} {path})", code=None, status=404)
        except ProtocolError as exc:
            return self._error(exc)

    def _json_body(self, recorded: RecordedRequest) -> Any:
        if recorded.body is None:
            if not recorded.raw:
                return {}
            raise ProtocolError(_JSON_PARSE_MESSAGE, code=None)
        return recorded.body

    def _client_secrets(self, recorded: RecordedRequest, kind: str) -> web.Response:
        if kind != "standard":
            raise ProtocolError("Ephemeral keys cannot create client secrets.", code="invalid_api_key", status=401)
        clean, ttl = client_secret_body_check(self._json_body(recorded))
        value = "ek_" + secrets.token_hex(16)
        expires_at = int(self.clock()) + ttl
        session = merge_session(self._new_session(clean.get("model", DEFAULT_MODEL), expires_at), clean)
        self.client_secrets[value] = ClientSecret(value=value, expires_at=expires_at, session=session)
        return web.json_response({"value": value, "expires_at": expires_at, "session": session})

    def _create_call(
        self, request: web.Request, recorded: RecordedRequest, kind: str, token: str | None
    ) -> web.Response:
        content_type = request.content_type
        if content_type == "application/sdp":
            offer = recorded.raw.decode("utf-8", "replace")
            if kind == "ephemeral":
                session = dict(self.client_secrets[token].session)  # type: ignore[index]
            else:
                session = self._new_session(request.query.get("model", DEFAULT_MODEL))
            via = "webrtc"
        elif content_type == "multipart/form-data":
            sdp, session_json = _parse_multipart(request.headers["Content-Type"], recorded.raw)
            if sdp is None:
                raise missing_parameter("sdp")
            offer = sdp
            clean = validate_session(
                json.loads(session_json) if session_json else {"type": "realtime"}, beta_code=BETA_CODE
            )
            session = merge_session(self._new_session(clean.get("model", DEFAULT_MODEL)), clean)
            via = "webrtc_unified"
        else:
            raise ProtocolError(
                f"Unsupported content type: '{content_type}'. Send the SDP offer as application/sdp, or "
                "multipart/form-data with 'sdp' and 'session' parts.",
                code="unsupported_content_type",
            )
        if not offer.lstrip().startswith("v=0"):
            raise ProtocolError("Invalid SDP offer.", code="invalid_offer", param="sdp")
        call_id = new_call_id()
        session = {**session, "id": new_id("sess")}
        self.calls[call_id] = CallRecord(
            call_id=call_id, session=session, scenario=self.scenario, created_via=via, sdp_offer=offer
        )
        answer = sdp_answer(offer)
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call_id}"},
        )

    def _call_action(self, call_id: str, action: str, recorded: RecordedRequest, kind: str) -> web.Response:
        if action not in ("hangup", "accept", "reject", "refer"):
            raise ProtocolError(f"Invalid URL (POST {recorded.path})", code=None, status=404)
        if kind != "standard":
            raise ProtocolError("Call control needs a standard API key.", code="invalid_api_key", status=401)
        call = self.calls.get(call_id)
        if call is None:
            raise ProtocolError(f"Call not found: {call_id}", code="call_not_found", param="call_id", status=404)
        if call.created_via == "sip":
            return self._sip_call_action(call, action, recorded)
        if action == "accept":
            clean = validate_session(self._json_body(recorded), path="session", beta_code=BETA_CODE)
            call.session = merge_session(call.session, clean)
        elif action == "refer":
            body = self._json_body(recorded)
            target = body.get("target_uri") if isinstance(body, dict) else None
            if not isinstance(target, str) or not target.startswith(("tel:", "sip:")):
                raise invalid_value("target_uri", target)
        elif call.state == "active":
            call.state = "ended"  # at once: the answer must not race the close
            task = asyncio.get_running_loop().create_task(self._end_call(call))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return web.Response(status=200)

    def _sip_call_action(self, call: CallRecord, action: str, recorded: RecordedRequest) -> web.Response:
        """accept / reject a ringing SIP call, refer / hang up an active one (openai SDK realtime.calls docstrings:
        reject "Decline an incoming SIP call", default 603; refer "Transfer an active SIP call")."""
        body = self._json_body(recorded)
        if action in ("accept", "reject") and call.state != "incoming":
            raise ProtocolError(f"Call {call.call_id} is not ringing (state {call.state}).", code="invalid_call_state")
        if action in ("refer", "hangup") and call.state != "active":
            raise ProtocolError(f"Call {call.call_id} is not active (state {call.state}).", code="invalid_call_state")
        if action == "accept":
            clean = validate_session(body, path="session", beta_code=BETA_CODE)
            call.session = merge_session(call.session, clean)
            call.state = "active"
        elif action == "reject":
            status = body.get("status_code", 603) if isinstance(body, dict) else None
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 699:
                raise invalid_value("status_code", status)
            call.state, call.reject_status = "rejected", status
        elif action == "refer":
            target = body.get("target_uri") if isinstance(body, dict) else None
            if not isinstance(target, str) or not target.startswith(("tel:", "sip:")):
                raise invalid_value("target_uri", target)
            if self.refer_failure_status is not None:
                raise ProtocolError(
                    "The transfer could not be completed.", code="refer_failed", status=self.refer_failure_status
                )
            call.refer_targets.append(target)
            self._end_soon(call)  # the far end took the call: the session ends
        else:
            self._end_soon(call)
        return web.Response(status=200)

    def _end_soon(self, call: CallRecord) -> None:
        call.state = "ended"  # at once: the answer must not race the close
        task = asyncio.get_running_loop().create_task(self._end_call(call))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _end_call(self, call: CallRecord) -> None:
        call.state = "ended"
        if call.engine is not None:
            await call.engine.close(code=1000, message="call ended")
        elif call.log is not None:
            call.log.ended.set()

    async def _fail(self, request: web.Request, failure: Failure) -> web.StreamResponse:
        kind = failure.kind
        if kind == "error":
            status = failure.status or 400
            return self._error(
                ProtocolError(
                    failure.message or "Invalid request: rejected by the fake upstream.",
                    code=failure.code or "invalid_value",
                    status=status,
                )
            )
        if kind == "server_error":
            return self._error(
                ProtocolError(
                    failure.message or _SERVER_ERROR_MESSAGE,
                    code=failure.code,
                    type="server_error",
                    status=failure.status or 500,
                )
            )
        if kind == "rate_limit":
            seconds = failure.retry_after
            return self._error(
                ProtocolError(
                    failure.message
                    or f"Rate limit reached for requests on realtime sessions. Please try again in {seconds:g}s.",
                    code=failure.code or "rate_limit_exceeded",
                    type="requests",
                    status=429,
                ),
                headers={
                    "retry-after": f"{seconds:g}",
                    "x-ratelimit-limit-requests": "100",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{seconds:g}s",
                },
            )
        if kind == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            _drop(request)
            return web.Response(status=503)
        if kind == "close":
            _drop(request)
            return web.Response(status=503)  # never sent: the connection is already gone
        body = json.dumps(
            {
                "value": "ek_" + secrets.token_hex(16),
                "expires_at": int(self.clock()) + 600,
                "session": self._new_session(DEFAULT_MODEL),
            }
        ).encode()
        if kind == "malformed_json":
            return web.Response(body=body[: len(body) // 2], content_type="application/json")
        # slow_body: a correct answer whose body trickles out
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        step = max(1, len(body) // 8)
        for start in range(0, len(body), step):
            await response.write(body[start : start + step])
            await asyncio.sleep(failure.delay)
        await response.write_eof()
        return response

    # --- control endpoints (no auth; loopback only) ---------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        path = request.path
        try:
            data = await request.json() if request.can_read_body else {}
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        if path == "/_fake/failure" and request.method == "POST":
            try:
                self.failure = Failure.from_dict(data) if data else None
            except (TypeError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response({"failure": None if self.failure is None else self.failure.__dict__})
        if path == "/_fake/calls" and request.method == "POST":
            try:
                call_id = self.register_call(data.get("call_id"), scenario=data.get("scenario"))
            except (ValueError, ProtocolError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response({"call_id": call_id}, status=201)
        if path == "/_fake/requests" and request.method == "GET":
            return web.json_response(
                [
                    {"method": r.method, "path": r.path, "query": r.query, "headers": r.headers, "body": r.body}
                    for r in self.requests
                ]
            )
        if path == "/_fake/sessions" and request.method == "GET":
            return web.json_response(
                [
                    {
                        "id": s.id,
                        "kind": s.kind,
                        "call_id": s.call_id,
                        "scenario": s.scenario,
                        "received": len(s.received),
                        "sent": len(s.sent),
                        "violations": s.violations,
                        "function_calls": s.function_calls,
                        "transcript": s.transcript(),
                        "script_done": s.script_done.is_set(),
                        "ended": s.ended.is_set(),
                    }
                    for s in self.sessions
                ]
            )
        return web.json_response({"error": "unknown control endpoint"}, status=404)

    # --- WebSocket ------------------------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        kind, token = self._auth(request)
        if kind not in ("standard", "ephemeral"):
            return self._error(self._auth_error(kind, token))
        if "realtime=v1" in request.headers.get("OpenAI-Beta", ""):
            return self._error(_beta_header_error())
        model = request.query.get("model")
        call_id = request.query.get("call_id")
        call: CallRecord | None = None
        try:
            if model and call_id:
                raise ProtocolError(
                    "Pass either 'model' or 'call_id', not both.", code="invalid_value", param="call_id"
                )
            if call_id:
                if kind != "standard":
                    raise ProtocolError(
                        "Attaching to a call needs a standard API key.", code="invalid_api_key", status=401
                    )
                call = self.calls.get(call_id)
                if call is None or call.state != "active":
                    raise ProtocolError(
                        f"Call not found: {call_id}", code="call_not_found", param="call_id", status=404
                    )
            elif kind == "ephemeral":
                # One secret may start several sessions; each is its own session with its own id.
                session = {**self.client_secrets[token].session, "id": new_id("sess")}  # type: ignore[index]
            elif not model:
                raise missing_parameter("model")
            elif model not in REALTIME_MODELS:
                raise invalid_value("model", model, REALTIME_MODELS)
            else:
                session = self._new_session(check_not_retired(model))
        except ProtocolError as exc:
            return self._error(exc)
        ws = web.WebSocketResponse(
            protocols=("realtime",), max_msg_size=32 * 1024 * 1024, compress=False, timeout=2.0
        )  # timeout: the close handshake; a client that stopped reading must not stall stop()
        if not ws.can_prepare(request).ok:
            return self._error(ProtocolError("Expected a WebSocket upgrade request.", code=None, status=426))
        await ws.prepare(request)
        headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in request.headers.items()}
        headers.pop("Sec-WebSocket-Protocol", None)

        if call is not None:
            engine = call.engine
            if engine is None:
                call.log = SessionLog(
                    id=call.session["id"],
                    kind="call",
                    model=call.session["model"],
                    call_id=call.call_id,
                    scenario=call.scenario.name if call.scenario else None,
                    headers=headers,
                )
                self.sessions.append(call.log)
                engine = call.engine = self._engine(call.session, call.log, call.scenario, call=call)
                self._limit_session(engine, call)
        else:
            session_log = SessionLog(
                id=session["id"],
                kind="model",
                model=session["model"],
                scenario=self.scenario.name if self.scenario and not self.echo else None,
                headers=headers,
            )
            self.sessions.append(session_log)
            if self.echo:
                await ws.send_str(
                    json.dumps({"type": "session.created", "event_id": new_id("event"), "session": session})
                )
                try:
                    await run_echo(ws, session_log, session)
                finally:
                    session_log.ended.set()
                return ws
            engine = self._engine(session, session_log, self.scenario, call=None)
            self._limit_session(engine, None)
        await engine.attach(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await engine.handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await engine.send(
                        ProtocolError(
                            "Binary frames are not supported; send JSON text frames.", code="invalid_event"
                        ).event(client_event_id=None)
                    )
        finally:
            await engine.detach(ws)
        return ws

    def _engine(
        self, session: dict, session_log: SessionLog, scenario: Scenario | None, *, call: CallRecord | None
    ) -> RealtimeSession:
        async def end_call() -> None:
            if call is not None:
                await self._end_call(call)

        engine = RealtimeSession(
            session=session,
            log_=session_log,
            scenario=scenario,
            time_scale=self.time_scale,
            pace=self.pace,
            answer_timeout=self.answer_timeout,
            is_call=call is not None,
            on_call_end=end_call,
        )
        self._engines.append(engine)
        return engine

    def _limit_session(self, engine: RealtimeSession, call: CallRecord | None) -> None:
        """Close the session with 1001 once it has lasted `session_limit` seconds (a call ends with it)."""

        async def expire() -> None:
            await asyncio.sleep(self.session_limit)
            if call is not None:
                call.state = "ended"
            await engine.close(code=SESSION_LIMIT_CLOSE, message=SESSION_LIMIT_REASON)

        task = asyncio.get_running_loop().create_task(expire())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _beta_header_error() -> ProtocolError:
    return ProtocolError(
        "The Realtime API beta has been shut down: requests with the 'OpenAI-Beta: realtime=v1' header are no longer "
        "accepted. Remove the header and use the GA interface.",
        code=BETA_CODE,
        param="OpenAI-Beta",
    )


# Browsers POST the WebRTC offer straight to the API (developers.openai.com realtime-webrtc guide), so the API
# answers CORS: a preflight for the Authorization and Content-Type headers, and `Location` readable by the page (the
# realtime-server-controls guide has the browser read it). Which other headers the real preflight allows is a guess;
# a header outside the list fails the preflight, as `originator` does on the real API (openclaw/openclaw #76457).
_CORS_ALLOWED_HEADERS = "authorization, content-type, openai-beta, openai-organization, openai-project"
_CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Location"}


def _preflight(request: web.Request) -> web.Response:
    asked = {h.strip().lower() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")}
    allowed = set(_CORS_ALLOWED_HEADERS.split(", "))
    if not request.headers.get("Origin") or not (asked - {""}) <= allowed:
        return web.Response(status=403)  # no CORS headers: the browser refuses the request it asked about
    return web.Response(
        status=204,
        headers={
            **_CORS_HEADERS,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": _CORS_ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )


def _offer_sections(offer: str) -> list[tuple[str, str, str]]:
    """(kind, mid, first line) of each m-section of an SDP offer; empty when a section has no mid."""
    sections: list[tuple[str, str, str]] = []
    for block in offer.replace("\r\n", "\n").split("\nm=")[1:]:
        lines = block.split("\n")
        mids = [line[6:].strip() for line in lines if line.startswith("a=mid:")]
        if not mids:
            return []
        sections.append((lines[0].split(" ", 1)[0], mids[0], lines[0]))
    return sections


def sdp_answer(offer: str) -> str:
    """An SDP answer a browser accepts for `offer`: one section per offered one, same mids and order, opus for
    audio, SCTP for the data channel, with ICE credentials and a DTLS fingerprint. There is no media server
    behind it and no ICE candidate in it, so the peer connection never connects: audio and the data channel are
    not modelled (docs/fakes.md); the call itself lives on, driven through the sideband."""
    ufrag, password = secrets.token_hex(4), secrets.token_hex(12)
    fingerprint = ":".join(f"{byte:02X}" for byte in secrets.token_bytes(32))
    # A browser's offer has an audio and a data-channel section; a bare test offer gets those two.
    sections = _offer_sections(offer) or [("audio", "0", ""), ("application", "1", "")]
    lines = [
        "v=0",
        f"o=- {secrets.randbelow(10**18)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(mid for _kind, mid, _line in sections),
        "a=msid-semantic: WMS",
    ]
    for kind, mid, first in sections:
        if kind == "application":
            lines += ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0"]
        elif kind == "audio":
            opus = re.search(r"a=rtpmap:(\d+) opus/48000/2", offer)
            payload = opus.group(1) if opus else "111"
            lines += [f"m=audio 9 UDP/TLS/RTP/SAVPF {payload}", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0"]
        else:
            lines += [first.replace(first.split(" ")[1], "0", 1), "c=IN IP4 0.0.0.0"]  # port 0: refused
        lines += [
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{password}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",
            f"a=mid:{mid}",
        ]
        if kind == "application":
            lines += ["a=sctp-port:5000", "a=max-message-size:262144"]
        elif kind == "audio":
            lines += ["a=sendrecv", "a=rtcp-mux", f"a=rtpmap:{payload} opus/48000/2"]
        else:
            lines += ["a=inactive"]
    return "\r\n".join(lines) + "\r\n"


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _parse_multipart(content_type: str, raw: bytes) -> tuple[str | None, str | None]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    sdp = session = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)  # bytes for a leaf part (None for a nested multipart)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if name == "sdp":
            sdp = text
        elif name == "session":
            session = text
    return sdp, session


@dataclass
class SipDelivery:
    """What `place_sip_call` did: the call id, and the project's answer to each delivery of the webhook."""

    call_id: str
    webhook_id: str
    body: bytes = b""  # the event as signed, for a test to deliver again
    statuses: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)


class FakeOpenAIThread:
    """A FakeOpenAI running on its own event loop in a daemon thread. Use as a context manager or call stop()."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-openai", daemon=True)
        self._thread.start()
        self.run(fake.start())

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the fake's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            self.run(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def __enter__(self) -> FakeOpenAIThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __getattr__(self, name: str) -> Any:  # requests, sessions, register_call, ... straight from the fake
        return getattr(self.fake, name)
