"""The Twilio Media Streams WebSocket (`/twilio/media`): a thin Channels adapter around realtime.bridge.MediaBridge.

Two deliberate departures from a stock AsyncWebsocketConsumer, both for the per-frame cost
(docs/facts.md#bridge-costs):
- no channel layer (`channel_layer_alias = None`): a Redis outage must not end phone calls
  (docs/facts.md#channel-layer-at-most-once), and without one the consumer can read its socket in a plain loop;
- `websocket.receive` skips Channels' per-message `aclose_old_connections()` (a hop to the sync thread and back,
  ~45 % of the CPU of a relay). That is safe because the frame path never touches the ORM; database work happens
  only in `database_sync_to_async` helpers, which manage their own connections. Connect and disconnect keep it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from calls.audit import audit_actor_for_task
from core import drain
from realtime.bridge import MediaBridge
from realtime.telephony import MEDIA_PATH
from realtime.telephony.signatures import websocket_signature_is_valid

logger = logging.getLogger(__name__)

# ASGI as Channels hands it over: plain dicts (asgiref.typing's TypedDicts are stricter than Channels' own code).
type Scope = dict[str, Any]
type Message = dict[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class TwilioMediaConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = None  # never a channel layer on the phone path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # AsyncConsumer.__call__ without a channel layer, minus await_many_dispatch's task and asyncio.wait per
        # message: one socket, one loop.
        self.scope = scope
        # This connection's task (and the tasks and threads it starts) writes for Twilio in the audit trail.
        audit_actor_for_task("twilio")
        self.channel_layer = None
        self.base_send = send
        self.bridge: MediaBridge | None = None
        self._live_key: int | None = None
        self._start_deadline: float | None = None  # set at accept; None once started, closed or refused
        try:
            while True:
                await self.dispatch(await self._next_message(receive))
        except StopConsumer:
            pass
        finally:
            if self.bridge is not None:
                # Whatever ended the loop (disconnect already did this; an error would not have): the upstream
                # closes and the call row ends, never an orphaned OpenAI session.
                await self.bridge.shutdown()
            drain.call_closed(self._live_key)  # counted until the socket is gone (deploy drain, heartbeat)

    async def _next_message(self, receive: Receive) -> Message:
        """The next ASGI message; until a valid `start`, within TWILIO_MEDIA_START_TIMEOUT_SECONDS of the accept."""
        if self._start_deadline is None:
            return await receive()
        remaining = self._start_deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(receive(), timeout=max(remaining, 0.0))
        except TimeoutError:
            logger.warning("media stream closed: no valid start in time")
            await self._close_twilio()
            return await receive()  # the disconnect that answers the close

    async def dispatch(self, message: Message) -> None:
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None and self.bridge is not None:
                try:
                    await self.bridge.on_twilio_text(text)
                except Exception:  # a frame must not kill the socket and orphan the upstream: counted, bounded
                    logger.exception("media frame failed")
                    self.bridge.malformed_frame()
                if self._start_deadline is not None and self.bridge.call is not None:
                    # A valid start: from now on this socket holds a call (drain waits for it, heartbeat keeps it).
                    self._start_deadline = None
                    call_id = self.bridge.call.pk
                    self._live_key = drain.call_opened(call_id)
            return  # Twilio sends text only (binary would be its warning 31950): ignore anything else
        await super().dispatch(message)

    async def connect(self) -> None:
        signature = _header(self.scope, b"x-twilio-signature")
        settings_header = _header(self.scope, b"x-twilio-webhooks-signature-settings")
        if not websocket_signature_is_valid(MEDIA_PATH, signature, settings_header):
            logger.warning("media stream refused: bad or missing X-Twilio-Signature")
            await self.close()  # before accept: the handshake is answered 403
            return
        if drain.refuse_new_calls():
            # Deploy drain: refused before accept; Twilio asks /twilio/stream-ended and plays the fallback.
            logger.warning("media stream refused: this process is draining")
            await self.close()
            return
        self.bridge = MediaBridge(send_twilio=self._send_text, close_twilio=self._close_twilio)
        await self.accept()
        # Not a live call yet: a socket without a valid start neither holds a drain nor stays open (F14).
        self._start_deadline = asyncio.get_running_loop().time() + settings.TWILIO_MEDIA_START_TIMEOUT_SECONDS

    async def _close_twilio(self) -> None:
        self._start_deadline = None  # closed once: the bridge's own close and the start timer never both send one
        await self.close()

    async def _send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def disconnect(self, code: int) -> None:
        if self.bridge is not None:
            await self.bridge.shutdown()
        drain.call_closed(self._live_key)
        self._live_key = None
