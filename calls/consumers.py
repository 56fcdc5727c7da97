"""The live escalation board's socket: staff of a clinic hear about its escalations the moment they change.

Authenticated in connect() before accept(): an anonymous, inactive or outside user is refused. The socket joins
only its clinics' groups; channel-layer messages carry ids only and every push is re-read from the database, scoped
to those clinics. On connect (and on {"type": "refresh"}) it sends a snapshot from the database, so a browser that
reconnects after a Redis outage catches up on what it missed.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer

from calls.audit import board_push_audited
from calls.models import Escalation
from calls.notifications import board_escalations, board_group, board_item
from core import jsonsafe
from organizations.access import organizations_for_user

logger = logging.getLogger(__name__)


class EscalationBoardConsumer(JsonWebsocketConsumer):
    def connect(self) -> None:
        user = self.scope.get("user")
        self.organization_ids: set = set()
        self.joined: list[str] = []
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
        self.accept()
        self._send_snapshot()

    def disconnect(self, code: int) -> None:
        self._leave_groups()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # A frame that is not strict, storable JSON (core.jsonsafe) gets an error frame; the socket stays open
        # (Channels' own decoding raised, closing it with 1011 and logging a traceback).
        try:
            content = jsonsafe.loads(text_data if text_data is not None else (bytes_data or b""))
        except jsonsafe.UnsafeInput as exc:
            self.send_json({"type": "error", "code": exc.code, "message": exc.message})
            return
        self.receive_json(content)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "refresh":
            self._send_snapshot()

    def escalation_changed(self, event: dict[str, str]) -> None:
        """Group message {"type": "escalation.changed", "escalation_id", "call_id", "event"}: re-read and push."""
        escalation_id = event.get("escalation_id")
        if escalation_id is None:  # names no escalation: nothing to re-read
            return
        escalation = (
            Escalation.objects.filter(pk=escalation_id, organization_id__in=self.organization_ids)
            .select_related("organization", "acknowledged_by")
            .first()
        )
        if escalation is not None:
            item = board_item(escalation)
            if board_push_audited(self.scope, [item], event=event.get("event", "")):  # audit hook, fail closed
                self.send_json({"type": "escalation", "event": event.get("event", ""), "escalation": item})

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
