"""A fake Twilio REST API on loopback: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`,
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (send an SMS), and
`GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav` for the recordings it was given
(`add_recording`: a WAV it serves whole or by byte range, as Twilio's media URL does).

It checks HTTP Basic auth like Twilio, records what it was asked (form fields), answers with a JSON call resource,
and can be told to fail the next requests with a Twilio-shaped error. Point settings.TWILIO_API_BASE_URL at
`server.base_url`. Use it from async code (`await server.start()`) or sync tests (`with FakeTwilioRest(...) as s:`).

Messages (docs/fakes.md#twilio-messaging): a valid request answers 201 with Twilio's Message resource (status
`queued`); Twilio's 400 errors for a missing To (21604), a To that is not a phone number (21211), a missing From
(21603), a missing Body (21602) and a Body over 1600 characters (21617). With a StatusCallback, the fake then POSTs
the status changes `queued`, `sent`, `delivered` there (`undelivered` with ErrorCode 30003 for a number in
`unreachable_numbers`), form-encoded and signed with the Auth Token like any Twilio webhook; a StatusCallback on
`public_base_url` is sent to `webhook_target` instead (a test server on loopback). `auto_status=False` holds them
until `send_status(sid)`. `send_inbound_sms` POSTs a signed incoming-message webhook, as a reply to a page would.

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
import email.utils
import hmac
import io
import json
import math
import re
import secrets
import struct
import uuid
import wave
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl

import httpx

from fakes.twilio.runner import LoopThread
from fakes.twilio.webhooks import signed_headers

if TYPE_CHECKING:
    from fakes.twilio.media import MediaStreamClient

RECORDING_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Recordings/(?P<recording>RE[0-9a-fA-F]{32})\.wav$"
)
RANGE_RE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")
CALL_PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Calls/(?P<call>CA[0-9A-Za-z]+)\.json$")
MESSAGES_PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Messages\.json$")
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_BODY = 1600


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
    # Messaging: the Message resources created, the status callbacks posted (url, form, HTTP status or error).
    messages: list[dict] = field(default_factory=list)
    callbacks: list[tuple[str, dict[str, str], int | str]] = field(default_factory=list)
    auto_status: bool = True
    unreachable_numbers: set[str] = field(default_factory=set)
    public_base_url: str | None = None
    webhook_target: str | None = None
    _status_callbacks: dict[str, str] = field(default_factory=dict)  # MessageSid -> StatusCallback URL
    _pending: set[asyncio.Task] = field(default_factory=set)
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
            if status == 201 and self.auto_status and payload.get("sid") in self._status_callbacks:
                task = asyncio.get_running_loop().create_task(self._post_statuses(payload["sid"]))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
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
        if MESSAGES_PATH_RE.match(path):
            return self._respond_message(method, path, headers, body)
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

    # --- Messaging ----------------------------------------------------------------------------------------------

    def _respond_message(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        match = MESSAGES_PATH_RE.match(path)
        assert match is not None
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        authorized = self._authorized(headers)
        recorded_headers = {k: v for k, v in headers.items() if k != "authorization"}
        self.requests.append(RecordedRequest(method, path, match["account"], "", form, authorized, recorded_headers))
        if not authorized:
            return 401, _error(401, 20003, "Authenticate")
        if method != "POST" or match["account"] != self.account_sid:
            return 404, _error(404, 20404, "The requested resource was not found")
        if self._failures:
            failure = self._failures.pop(0)
            return failure.status, _error(failure.status, failure.code, failure.message)
        to, sender, text = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return 400, _error(400, 21604, "A 'To' phone number is required.")
        if not E164_RE.match(to):
            return 400, _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not form.get("MessagingServiceSid"):
            return 400, _error(400, 21603, "A 'From' phone number is required.")
        if not text and not form.get("MediaUrl"):
            return 400, _error(400, 21602, "Message body is required.")
        if len(text) > MAX_BODY:
            return 400, _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        sid = "SM" + uuid.uuid4().hex
        now = email.utils.format_datetime(email.utils.localtime(), usegmt=False)
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": text,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(-(-len(text) // 153) if len(text) > 160 else 1),  # 153 per part once concatenated
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages.append(resource)
        if form.get("StatusCallback"):
            self._status_callbacks[sid] = form["StatusCallback"]
        return 201, resource

    def _callback_target(self, url: str) -> str:
        if self.public_base_url and self.webhook_target and url.startswith(self.public_base_url):
            return self.webhook_target.rstrip("/") + url[len(self.public_base_url.rstrip("/")) :]
        return url

    async def _post_signed(self, public_url: str, params: dict[str, str]) -> int | str:
        headers = signed_headers(self.auth_token, public_url, params)
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(self._callback_target(public_url), data=params, headers=headers)
        except httpx.HTTPError as exc:
            outcome: int | str = type(exc).__name__
        else:
            outcome = response.status_code
        self.callbacks.append((public_url, params, outcome))
        return outcome

    def _message_statuses(self, resource: dict) -> list[tuple[str, str]]:
        if resource["to"] in self.unreachable_numbers:
            return [("queued", ""), ("sent", ""), ("undelivered", "30003")]
        return [("queued", ""), ("sent", ""), ("delivered", "")]

    async def _post_statuses(self, sid: str, statuses: list[tuple[str, str]] | None = None) -> list[int | str]:
        resource = next(message for message in self.messages if message["sid"] == sid)
        url = self._status_callbacks[sid]
        outcomes = []
        for status, error_code in statuses or self._message_statuses(resource):
            resource["status"] = status
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": "2010-04-01",
                "From": resource["from"],
                "To": resource["to"],
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
            }
            if error_code:
                params["ErrorCode"] = error_code
                resource["error_code"] = int(error_code)
            outcomes.append(await self._post_signed(url, params))
        return outcomes

    def send_status(self, sid: str, statuses: list[tuple[str, str]] | None = None) -> list[int | str]:
        """Post the status callbacks of message `sid` now (sync tests with auto_status=False)."""
        assert self._thread is not None, "use `with FakeTwilioRest(...)`"
        return self._thread.run(self._post_statuses(sid, statuses))

    def send_inbound_sms(self, *, url: str, sender: str, to: str, body: str) -> int | str:
        """Twilio's incoming-message webhook for an SMS from `sender` to our number `to`, signed, to `url` (the
        public URL configured on the number)."""
        sid = "SM" + uuid.uuid4().hex
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "From": sender,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
        }
        assert self._thread is not None, "use `with FakeTwilioRest(...)`"
        return self._thread.run(self._post_signed(url, params))


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
