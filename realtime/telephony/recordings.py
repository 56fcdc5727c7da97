"""A call's recordings (the caller's voicemail, and the whole call where the clinic records calls) played in the
console: an authenticated, audited, streamed proxy to
Twilio's media URL, `GET {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav`
with the account's Basic auth.

Nothing is public: the console's staff login is required, the call is looked up through the tenancy chokepoint (a
call of another clinic, or one without a recording, is 404), and each fetch is recorded in the audit trail before
any audio leaves. The browser never sees Twilio's URL or credentials. A `Range` header passes through (and
Twilio's 206 / Content-Range come back), so the page's <audio> player can seek without downloading the whole file.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Generator

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from calls.api.queries import calls_for_user
from calls.audit import Action, audit_read
from calls.models import Call

logger = logging.getLogger(__name__)

RECORDING_SID_RE = re.compile(r"^RE[0-9a-fA-F]{32}$")
RANGE_RE = re.compile(r"^bytes=\d*-\d*$")  # one range; anything else is not passed on
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
CHUNK_BYTES = 64 * 1024
PASSED_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges")


# What can be played, by URL: the part of call.metadata that names its RecordingSid (realtime.telephony.services).
VOICEMAIL = "voicemail"
WHOLE_CALL = "recording"
AUDIT_PART = {VOICEMAIL: "recording", WHOLE_CALL: "call_recording"}


def recording_sid_of(call: Call, part: str = VOICEMAIL) -> str | None:
    """The RecordingSid of the call's voicemail or whole-call recording, if well formed (and, for the whole call,
    completed: an `absent` recording has nothing to play)."""
    stored = (call.metadata or {}).get(part)
    if not isinstance(stored, dict) or (part == WHOLE_CALL and stored.get("status") != "completed"):
        return None
    sid = stored.get("recording_sid")
    return sid if isinstance(sid, str) and RECORDING_SID_RE.match(sid) else None


def recording_url(recording_sid: str) -> str:
    account = settings.TWILIO_ACCOUNT_SID
    return f"{settings.TWILIO_API_BASE_URL}/2010-04-01/Accounts/{account}/Recordings/{recording_sid}.wav"


def _chunks(client: httpx.Client, upstream: httpx.Response) -> Generator[bytes]:
    try:
        yield from upstream.iter_bytes(CHUNK_BYTES)
    except httpx.HTTPError as exc:  # Twilio went away mid-file: the player stops; nothing more to send
        logger.warning("recording stream cut error=%s", type(exc).__name__)
    finally:
        upstream.close()
        client.close()


async def _achunks(client: httpx.Client, upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The same, for the ASGI server: Django reads a sync iterator whole before sending any of it under ASGI, so
    each chunk is read off the event loop and sent as it comes."""
    chunks = _chunks(client, upstream)

    def read() -> bytes | None:
        return next(chunks, None)

    try:
        while (chunk := await sync_to_async(read, thread_sensitive=False)()) is not None:
            yield chunk
    finally:
        await sync_to_async(chunks.close, thread_sensitive=False)()


def call_recording(request: HttpRequest, call_id: uuid.UUID, part: str = VOICEMAIL) -> HttpResponseBase:
    """The recording's audio for the console's player (staff login required: wrapped by the admin site)."""
    call = calls_for_user(request.user).filter(pk=call_id).first()
    sid = recording_sid_of(call, part) if call is not None else None
    if call is None or sid is None:
        raise Http404("No such recording.")  # another clinic's call looks absent, as in the rest of the console
    if not settings.TWILIO_ACCOUNT_SID or not settings.TWILIO_AUTH_TOKEN:
        return HttpResponse("Recordings cannot be played: Twilio is not configured.", status=503)
    # Audit before any audio leaves (fails closed: 503 audit_unavailable and no audio).
    audit_read(request, action=Action.VIEW, objects=[call], via="console", details={"part": AUDIT_PART[part]})
    headers = {"Accept": "audio/wav"}
    wanted = request.headers.get("Range", "")
    if wanted and RANGE_RE.match(wanted):
        headers["Range"] = wanted
    # Twilio may redirect the media to its storage: httpx drops the Basic auth on a redirect to another origin.
    auth = (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    client = httpx.Client(timeout=TIMEOUT, follow_redirects=True, max_redirects=3, auth=auth)
    try:
        upstream = client.send(client.build_request("GET", recording_url(sid), headers=headers), stream=True)
    except httpx.HTTPError as exc:
        client.close()
        logger.warning("recording fetch failed error=%s call=%s", type(exc).__name__, call.pk)
        return HttpResponse("The recording could not be fetched from Twilio; try again shortly.", status=502)
    if upstream.status_code not in (200, 206, 416):
        status = upstream.status_code
        upstream.close()
        client.close()
        logger.warning("recording fetch refused status=%s call=%s", status, call.pk)
        if status == 404:
            raise Http404("The recording is no longer stored at Twilio.")
        return HttpResponse("The recording could not be fetched from Twilio; try again shortly.", status=502)
    streamed = _achunks(client, upstream) if isinstance(request, ASGIRequest) else _chunks(client, upstream)
    response = StreamingHttpResponse(
        streamed,
        status=upstream.status_code,
        content_type="audio/wav" if upstream.status_code != 416 else "text/plain",
    )
    for name in PASSED_HEADERS:
        if name in upstream.headers:
            response[name] = upstream.headers[name]
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    return response
