"""The live escalation board's socket: staff of a clinic hear about its escalations the moment they change.

Authenticated in connect() before accept(): an anonymous, inactive or outside user is refused. The socket joins
only its clinics' groups; channel-layer messages carry ids only and every push is re-read from the database, scoped
to those clinics. On connect (and on {"type": "refresh"}) it sends a snapshot from the database, so a browser that
reconnects after a Redis outage catches up on what it missed. On the in-memory channel layer (no REDIS_URL) the
socket also polls the outbox's board rows every BOARD_FEED_POLL_SECONDS (calls.notifications.board_feed_poll), so
an escalation raised by another process (simulate_call, the notification worker, a second server) reaches it too.

The right to listen is re-checked before every push and refresh and every BOARD_RECHECK_SECONDS: the console session
must still exist (logout, idle timeout and absolute lifetime end it, and so does a password change), the user must
still be active, and only the clinics the user still belongs to are heard. A socket that lost all of that is closed
with 4401 (signed out) or 4403 (no clinic left); the page then asks for a new login.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from calls.audit import board_push_audited
from calls.models import Escalation
from calls.notifications import (
    BoardFeedCursor,
    board_escalations,
    board_feed_cursor,
    board_feed_poll,
    board_group,
    board_item,
)
from core import jsonsafe
from organizations.access import organizations_for_user
from organizations.auth import session_user

logger = logging.getLogger(__name__)

CLOSE_SIGNED_OUT = 4401
CLOSE_NO_CLINIC = 4403
INVALID_MESSAGE = 'Send a JSON object such as {"type": "refresh"}.'


def feed_polled() -> bool:
    """Whether board sockets poll the outbox: the in-memory layer carries nothing between processes, so an
    escalation raised by another process reaches the board only this way (BOARD_FEED_POLL_SECONDS 0 turns it off).
    With Redis the group sends reach every process, as they always did."""
    return settings.BOARD_FEED_POLL_SECONDS > 0 and isinstance(get_channel_layer(), InMemoryChannelLayer)


class EscalationBoardConsumer(JsonWebsocketConsumer):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # The periodic re-check (and, on the in-memory layer, the feed poll) run beside the consumer's own loop and
        # end with it.
        tickers = [asyncio.create_task(self._recheck_periodically())]
        if feed_polled():
            tickers.append(asyncio.create_task(self._poll_feed_periodically()))
        try:
            await super().__call__(scope, receive, send)
        finally:
            for ticker in tickers:
                ticker.cancel()

    async def _poll_feed_periodically(self) -> None:
        while True:
            await asyncio.sleep(settings.BOARD_FEED_POLL_SECONDS)
            if getattr(self, "feed", None) is not None and self.listening:
                try:
                    await self.dispatch({"type": "board.poll"})
                except Exception as exc:  # the database is away: the next tick reads from the same cursor
                    logger.warning("board feed poll failed (%s)", type(exc).__name__)

    async def _recheck_periodically(self) -> None:
        while True:
            await asyncio.sleep(settings.BOARD_RECHECK_SECONDS)
            if getattr(self, "listening", False):
                try:
                    await self.dispatch({"type": "board.recheck"})
                except Exception as exc:  # the next tick, a push or a refresh checks again
                    logger.warning("board socket re-check failed (%s)", type(exc).__name__)

    def connect(self) -> None:
        user = self.scope.get("user")
        self.organization_ids: set = set()
        self.joined: list[str] = []
        self.feed: BoardFeedCursor | None = None
        self.listening = False
        if user is None or not user.is_authenticated or not user.is_active:
            self.close()
            return
        organization_ids = set(organizations_for_user(user).values_list("id", flat=True))
        if not organization_ids:
            self.close()
            return
        try:
            for organization_id in organization_ids:
                group = board_group(organization_id)
                async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
                self.joined.append(group)
        except Exception as exc:  # the layer (Redis) is down: refuse, the page retries with back-off
            logger.warning("board socket refused: channel layer unavailable (%s)", type(exc).__name__)
            self._leave_groups()
            self.close()
            return
        self.organization_ids = organization_ids
        # The feed's cursor is taken before the snapshot is read: a change in between is pushed (again), never lost.
        self.feed = board_feed_cursor(organization_ids) if feed_polled() else None
        self.accept()
        self.listening = True
        self._send_snapshot()

    def disconnect(self, code: int) -> None:
        self.listening = False
        self._leave_groups()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # A frame that is not strict, storable JSON (core.jsonsafe) or not an object gets an error frame; the socket
        # stays open (Channels' own decoding raised, closing it with 1011 and logging a traceback).
        try:
            content = jsonsafe.loads(text_data if text_data is not None else (bytes_data or b""))
        except jsonsafe.UnsafeInput as exc:
            self.send_json({"type": "error", "code": exc.code, "message": exc.message})
            return
        if not isinstance(content, dict):
            self.send_json(
                {"type": "error", "code": "invalid_message", "message": 'Send JSON such as {"type": "refresh"}.'}
            )
            return
        self.receive_json(content, **kwargs)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "refresh" and self._still_allowed():
            self._send_snapshot()

    def board_recheck(self, event: dict[str, str]) -> None:
        """The periodic timer's message (sent to this consumer only, never through the channel layer)."""
        self._still_allowed()

    def escalation_changed(self, event: dict[str, str]) -> None:
        """Group message {"type": "escalation.changed", "escalation_id", "call_id", "event"}: re-read and push."""
        escalation_id = event.get("escalation_id")
        if escalation_id is None:  # names no escalation: nothing to re-read
            return
        notification_id = event.get("notification_id")
        if self.feed is not None and notification_id and not self.feed.remember(notification_id):
            return  # the feed already pushed this change
        if not self._still_allowed():
            return
        self._push(escalation_id, event.get("event", ""))

    def board_poll(self, event: dict[str, str]) -> None:
        """The feed timer's message (this consumer only): push what other processes changed since the last poll."""
        if self.feed is None or not self.listening:
            return
        changes = board_feed_poll(self.feed, self.organization_ids)
        if not changes or not self._still_allowed():
            return
        for escalation_id, change in changes:
            self._push(escalation_id, change)

    def _push(self, escalation_id: str, event: str) -> None:
        """Re-read one escalation, scoped to the socket's clinics, and send it (audited first, fail closed)."""
        escalation = (
            Escalation.objects.filter(pk=escalation_id, organization_id__in=self.organization_ids)
            .select_related("organization", "acknowledged_by", "call")
            .first()
        )
        if escalation is not None:
            item = board_item(escalation)
            if board_push_audited(self.scope, [item], event=event):  # audit hook, fail closed
                self.send_json({"type": "escalation", "event": event, "escalation": item})

    def _still_allowed(self) -> bool:
        """Re-read the session, the user and the memberships; close the socket when nothing is left to hear."""
        if not self.listening:
            return False
        session = self.scope.get("session")
        user = session_user(getattr(session, "session_key", None), self.scope["user"].pk)
        if user is None:
            return self._end(CLOSE_SIGNED_OUT)
        organization_ids = set(organizations_for_user(user).values_list("id", flat=True)) & self.organization_ids
        if not organization_ids:
            return self._end(CLOSE_NO_CLINIC)
        for organization_id in self.organization_ids - organization_ids:  # a clinic the user left: stop hearing it
            group = board_group(organization_id)
            try:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
            except Exception as exc:  # the scoped re-read above already keeps that clinic out of every push
                logger.info("board socket could not leave a group (%s)", type(exc).__name__)
            self.joined = [name for name in self.joined if name != group]
        self.organization_ids = organization_ids
        self.scope["user"] = user  # audit rows name the user as they are now
        return True

    def _end(self, code: int) -> bool:
        self.listening = False
        self._leave_groups()
        self.close(code=code)
        return False

    def _send_snapshot(self) -> None:
        items = board_escalations(self.organization_ids)
        if board_push_audited(self.scope, items, event="snapshot"):  # audit hook, fail closed
            self.send_json({"type": "snapshot", "escalations": items})

    def _leave_groups(self) -> None:
        for group in self.joined:
            try:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
            except Exception as exc:
                logger.info("board socket could not leave its group (%s)", type(exc).__name__)
        self.joined = []
