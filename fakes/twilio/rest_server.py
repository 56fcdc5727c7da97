"""A fake Twilio REST API on loopback: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, and
`GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav` for the recordings it was given
(`add_recording`: a WAV it serves whole or by byte range, as Twilio's media URL does).

It checks HTTP Basic auth like Twilio, records what it was asked (form fields), answers with a JSON call resource,
and can be told to fail the next requests with a Twilio-shaped error. Point settings.TWILIO_API_BASE_URL at
`server.base_url`. Use it from async code (`await server.start()`) or sync tests (`with FakeTwilioRest(...) as s:`).

A call update with new TwiML (`Twiml` or `Url`) redirects the call, and Twilio then abandons the running
<Connect><Stream>: the call's media stream (a MediaStreamClient given `rest=` this server) sends `stop` and closes.
`stop_on_redirect` says when: "before_reply" (the stream's `stop` reaches the bridge before the REST answer),
"after_reply", or None (the stream is left alone).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import io
import json
import math
import re
import secrets
import struct
import wave
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl

from fakes.twilio.runner import LoopThread

if TYPE_CHECKING:
    from fakes.twilio.media import MediaStreamClient

RECORDING_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Recordings/(?P<recording>RE[0-9a-fA-F]{32})\.wav$"
)
RANGE_RE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")
CALL_PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Calls/(?P<call>CA[0-9A-Za-z]+)\.json$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    account_sid: str
    call_sid: str
    form: dict[str, str]
    authorized: bool
    headers: dict[str, str]


@dataclass
class _Failure:
    status: int
    code: int
    message: str


@dataclass
class FakeTwilioRest:
    account_sid: str
    auth_token: str
    host: str = "127.0.0.1"
    port: int = 0
    stop_on_redirect: Literal["before_reply", "after_reply"] | None = "before_reply"
    requests: list[RecordedRequest] = field(default_factory=list)
    streams: dict[str, MediaStreamClient] = field(default_factory=dict)  # CallSid -> its live media stream
    recordings: dict[str, bytes] = field(default_factory=dict)  # RecordingSid -> its WAV file
    _failures: list[_Failure] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _thread: LoopThread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(
        self, *, status: int = 500, code: int = 20500, message: str = "Internal Server Error", count: int = 1
    ) -> None:
        """The next `count` authorized requests get this Twilio error (e.g. 404/20404 for a call that ended)."""
        self._failures.extend(_Failure(status, code, message) for _ in range(count))

    def add_recording(self, recording_sid: str | None = None, *, seconds: float = 2.0) -> str:
        """A recording this fake serves (8 kHz 16-bit mono PCM WAV, a tone); returns its RecordingSid."""
        sid = recording_sid or "RE" + secrets.token_hex(16)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            count = int(seconds * 8000)
            out.writeframes(
                struct.pack(f"<{count}h", *(int(9000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(count)))
            )
        self.recordings[sid] = buffer.getvalue()
        return sid

    def stream_opened(self, call_sid: str, stream: MediaStreamClient) -> None:
        """A media stream of `call_sid` started (MediaStreamClient calls this when given `rest=`)."""
        self.streams[call_sid] = stream

    async def _end_stream(self, call_sid: str) -> None:
        stream = self.streams.pop(call_sid, None)
        future = stream.redirect_soon() if stream is not None else None
        if future is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(future), 5)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def __enter__(self) -> FakeTwilioRest:
        self._thread = LoopThread().start()
        self._thread.run(self.start())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._thread.run(self.stop())
            self._thread.stop()
            self._thread = None

    # --- HTTP ---------------------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            if method in ("GET", "HEAD") and RECORDING_PATH_RE.match(target.split("?", 1)[0]):
                writer.write(self._recording(method, target, headers))
                await writer.drain()
                return
            status, payload = self._respond(method, target, headers, body)
            redirect = status == 200 and bool({"Twiml", "Url"} & set(self.requests[-1].form))
            if redirect and self.stop_on_redirect == "before_reply":
                await self._end_stream(self.requests[-1].call_sid)
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            if redirect and self.stop_on_redirect == "after_reply":
                await self._end_stream(self.requests[-1].call_sid)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    def _recording(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        """The recording's media: 200 whole, 206 for a satisfiable `Range: bytes=…`, 416 otherwise; Twilio's JSON
        errors for a missing one (404/20404) or bad credentials (401/20003)."""
        path = target.split("?", 1)[0]
        match = RECORDING_PATH_RE.match(path)
        assert match is not None
        authorized = self._authorized(headers)
        recorded_headers = {k: v for k, v in headers.items() if k != "authorization"}
        self.requests.append(RecordedRequest(method, path, match["account"], "", {}, authorized, recorded_headers))
        data = self.recordings.get(match["recording"])
        if not authorized:
            return _json_answer(401, _error(401, 20003, "Authenticate"))
        if match["account"] != self.account_sid or data is None:
            return _json_answer(404, _error(404, 20404, "The requested resource was not found"))
        if self._failures:
            failure = self._failures.pop(0)
            return _json_answer(failure.status, _error(failure.status, failure.code, failure.message))
        total = len(data)
        status, extra, part = 200, "", data
        wanted = RANGE_RE.match(headers.get("range", ""))
        if "range" in headers and wanted is not None and (wanted["start"] or wanted["end"]):
            if wanted["start"]:
                start = int(wanted["start"])
                end = min(int(wanted["end"]) if wanted["end"] else total - 1, total - 1)
            else:  # a suffix: the last N bytes
                start, end = max(total - int(wanted["end"]), 0), total - 1
            if start >= total or start > end:
                return (
                    f"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
            status, extra, part = 206, f"Content-Range: bytes {start}-{end}/{total}\r\n", data[start : end + 1]
        head = (
            f"HTTP/1.1 {status} {'Partial Content' if status == 206 else 'OK'}\r\nContent-Type: audio/x-wav\r\n"
            f"Content-Length: {len(part)}\r\nAccept-Ranges: bytes\r\n{extra}Connection: close\r\n\r\n"
        ).encode()
        return head + (part if method == "GET" else b"")

    def _authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    def _respond(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        path = target.split("?", 1)[0]
        match = CALL_PATH_RE.match(path)
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        authorized = self._authorized(headers)
        recorded_headers = {k: v for k, v in headers.items() if k != "authorization"}
        self.requests.append(
            RecordedRequest(
                method,
                path,
                match["account"] if match else "",
                match["call"] if match else "",
                form,
                authorized,
                recorded_headers,
            )
        )
        if not authorized:
            return 401, _error(401, 20003, "Authenticate")
        if method != "POST" or match is None or match["account"] != self.account_sid:
            return 404, _error(404, 20404, "The requested resource was not found")
        if self._failures:
            failure = self._failures.pop(0)
            return failure.status, _error(failure.status, failure.code, failure.message)
        status = "completed" if form.get("Status") == "completed" else "in-progress"
        return 200, {
            "sid": match["call"],
            "account_sid": self.account_sid,
            "status": status,
            "api_version": "2010-04-01",
            "direction": "inbound",
            "uri": path,
        }


def _json_answer(status: int, payload: dict) -> bytes:
    data = json.dumps(payload).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + data


def _error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
