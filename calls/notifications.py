"""Escalation notifications: a database outbox, delivered after commit to the live board and the clinic webhook.

Why an outbox: channel-layer group messages are at-most-once and die with Redis
(docs/facts.md#channel-layer-at-most-once), and a clinic's webhook may be down. So every escalation writes
`Notification` rows in its own transaction; after commit one immediate attempt runs off the request/pipeline
thread, and `manage.py deliver_notifications` retries what is still pending with back-off until it lands or gives up.

Board messages carry ids only ({"type": "escalation.changed", "escalation_id", "call_id", "event"}); the board's
consumer re-reads the escalation from the database, scoped to the socket's clinics.

Webhook signature (Stripe-style), header `X-Voiceagent-Signature: t=<unix seconds>,v1=<hex>` where
`<hex> = HMAC-SHA256(key=organization.webhook_secret, msg=f"{t}.{raw_body}")`. A receiver recomputes it over the raw
request body, compares in constant time, rejects a `t` more than 5 minutes from its clock, and dedupes on the body's
`id` (the same on every retry of one notification). The body holds ids and levels only, never patient data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import httpcore
from asgiref.sync import SyncToAsync, async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from calls import paging
from calls.board_view import escalation_details, reason_codes
from calls.models import Escalation, Notification

if TYPE_CHECKING:
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper

logger = logging.getLogger(__name__)

EVENT_CREATED = "escalation.created"
EVENT_UPDATED = "escalation.updated"

# Delay before retry n (after failed attempt n); one first attempt plus these retries, then the row is `failed`.
BACKOFF_SECONDS = (5, 30, 120, 600, 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
# A board push is worth something only while it is fresh (a reconnecting board gets a database snapshot anyway):
# retry every few seconds for about a minute, so boards catch up within seconds of Redis coming back.
BOARD_BACKOFF_SECONDS = (2, 2, 3, 3, 5, 5, 10, 10, 20)


def _backoff(row: Notification) -> tuple[int, ...]:
    return BOARD_BACKOFF_SECONDS if row.channel == Notification.Channel.BOARD else BACKOFF_SECONDS


# A claimed row is invisible to other workers this long; a worker that dies mid-attempt is retried after it.
CLAIM_LEASE = dt.timedelta(seconds=60)
GROUP_SEND_TIMEOUT = 1.0  # a frozen Redis must not hang whoever sends (docs/facts.md#frozen-redis)
WEBHOOK_TIMEOUTS = {"connect": 3.0, "read": 5.0, "write": 5.0, "pool": 3.0}
SIGNATURE_HEADER = "X-Voiceagent-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300


# --- Group names and what the board shows -----------------------------------------------------------------------------


def board_group(organization_id: uuid.UUID | str) -> str:
    """The one place the board's channel-layer group name is made (consumers and senders both use it)."""
    return f"escalations_org_{uuid.UUID(str(organization_id)).hex}"


def board_item(escalation: Escalation) -> dict[str, Any]:
    """What the live board shows about one escalation: ids, levels, codes and times, and what staff need to act
    (calls.board_view.escalation_details: caller, callback number, the words, pages). Sent only after the read is
    audited; `escalation` comes with its organization, call and acknowledged_by selected."""
    codes = reason_codes(escalation)
    return {
        "id": str(escalation.pk),
        "call_id": str(escalation.call_id),
        "organization_id": str(escalation.organization_id),
        "organization_name": escalation.organization.name,
        "level": escalation.level,
        "level_label": escalation.get_level_display(),
        "reason_code": ", ".join(codes),
        "source": escalation.source,
        "source_label": escalation.get_source_display(),
        "status": escalation.status,
        "created_at": escalation.created_at.isoformat(),
        "acknowledged_at": escalation.acknowledged_at.isoformat() if escalation.acknowledged_at else None,
        "acknowledged_by": escalation.acknowledged_by.get_username() if escalation.acknowledged_by else None,
        "call_url": reverse("admin:calls_call_change", args=[escalation.call_id]),
        "escalation_url": reverse("admin:calls_escalation_change", args=[escalation.pk]),
        **escalation_details(escalation),
    }


def board_escalations(organization_ids: Iterable[Any], *, limit: int = 200) -> list[dict[str, Any]]:
    """Open and acknowledged escalations of these clinics, newest first (the board's snapshot)."""
    rows = (
        Escalation.objects.filter(
            organization_id__in=list(organization_ids),
            status__in=[Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED],
        )
        .select_related("organization", "acknowledged_by", "call")
        .order_by("-created_at")[:limit]
    )
    return [board_item(escalation) for escalation in rows]


# --- The board feed: the outbox read back, for boards the channel layer cannot reach ----------------------------------
#
# The in-memory channel layer (the embedded default) reaches only sockets of the process that sends. An escalation
# raised by another process (simulate_call, deliver_notifications, a second server) still writes its board rows into
# the outbox in its own transaction, so an open board polls them: every BOARD_FEED_POLL_SECONDS, the board rows of
# its clinics written since a moving window's start. The window reaches BOARD_FEED_OVERLAP back because a row's
# created_at is taken inside its transaction, which may commit later than a newer row's; rows already pushed are
# remembered (by id, within the window) and skipped.

BOARD_FEED_OVERLAP = dt.timedelta(seconds=30)
BOARD_FEED_LIMIT = 200  # rows read per poll; the rest come on the next one
BOARD_FEED_SEEN_MAX = 2000  # ids remembered per board (a flood of escalations cannot grow it further)


@dataclass
class BoardFeedCursor:
    """Where one board socket is in the feed: the ids it already pushed (with when they were written)."""

    seen: dict[str, dt.datetime] = field(default_factory=dict)

    def remember(self, notification_id: str, created_at: dt.datetime | None = None) -> bool:
        """Note an id as pushed; False when it already was."""
        if notification_id in self.seen:
            return False
        self.seen[notification_id] = created_at or timezone.now()
        while len(self.seen) > BOARD_FEED_SEEN_MAX:
            self.seen.pop(next(iter(self.seen)))
        return True


def _board_feed_rows(organization_ids: Iterable[Any], since: dt.datetime) -> list[tuple[Any, Any, str, dt.datetime]]:
    return list(
        Notification.objects.filter(
            channel=Notification.Channel.BOARD, organization_id__in=list(organization_ids), created_at__gte=since
        )
        .order_by("created_at")
        .values_list("pk", "escalation_id", "event", "created_at")[:BOARD_FEED_SEEN_MAX]
    )


def board_feed_cursor(organization_ids: Iterable[Any]) -> BoardFeedCursor:
    """A cursor at now, for a board about to read its snapshot: what is already written is in that snapshot."""
    cursor = BoardFeedCursor()
    for pk, _escalation_id, _event, created_at in _board_feed_rows(
        organization_ids, timezone.now() - BOARD_FEED_OVERLAP
    ):
        cursor.remember(str(pk), created_at)
    return cursor


def board_feed_poll(cursor: BoardFeedCursor, organization_ids: Iterable[Any]) -> list[tuple[str, str]]:
    """(escalation id, event) for each escalation with board rows this cursor has not pushed yet, oldest first; the
    cursor moves past them. Ids only: the caller re-reads each escalation, scoped to the socket's clinics."""
    floor = timezone.now() - BOARD_FEED_OVERLAP
    cursor.seen = {pk: at for pk, at in cursor.seen.items() if at >= floor}
    changed: dict[str, str] = {}
    fresh = 0
    for pk, escalation_id, event, created_at in _board_feed_rows(organization_ids, floor):
        if fresh >= BOARD_FEED_LIMIT:
            break
        if cursor.remember(str(pk), created_at):
            fresh += 1
            changed.pop(str(escalation_id), None)  # keep the order of each escalation's latest change
            changed[str(escalation_id)] = event
    return list(changed.items())


# --- Writing the outbox (inside the escalation's transaction) ---------------------------------------------------------


def notifications_enqueue(*, escalation: Escalation, event: str, webhook: bool) -> list[Notification]:
    """Write outbox rows for `escalation` in the caller's transaction and schedule delivery after it commits.

    A rolled-back escalation leaves no rows and sends nothing.
    """
    now = timezone.now()
    channels = [Notification.Channel.BOARD] + ([Notification.Channel.WEBHOOK] if webhook else [])
    rows = Notification.objects.bulk_create(
        [
            Notification(
                organization_id=escalation.organization_id,
                escalation=escalation,
                channel=channel,
                event=event,
                next_attempt_at=now,
            )
            for channel in channels
        ]
    )
    board = [row.pk for row in rows if row.channel == Notification.Channel.BOARD]
    webhook_ids = [row.pk for row in rows if row.channel == Notification.Channel.WEBHOOK]
    transaction.on_commit(lambda: schedule_delivery(board=board, webhook=webhook_ids))
    return rows


# --- Scheduling the immediate attempt ---------------------------------------------------------------------------------

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify")
_in_flight: set[concurrent.futures.Future] = set()


def _inline_only() -> bool:
    """An in-memory SQLite database (the test suite's) cannot be written from two threads at once: SQLite's shared
    cache answers "table is locked" at once instead of waiting. There the attempt runs on the committing thread."""
    return connection.vendor == "sqlite" and cast("SQLiteDatabaseWrapper", connection).is_in_memory_db()


def _submit(fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn` in a background thread (inline on an in-memory SQLite database, see _inline_only)."""
    if _inline_only():
        try:
            fn(*args)
        except Exception:
            logger.exception("notification delivery crashed; the worker will retry")
        return
    future = _executor.submit(_in_worker_thread, fn, *args)
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)


def wait_for_in_flight(timeout: float = 5.0) -> None:
    """For short-lived processes (management commands): let the immediate attempts started here finish before the
    interpreter shuts down, which would otherwise cut them off mid-send (the worker would retry them later)."""
    concurrent.futures.wait(list(_in_flight), timeout=timeout)


def _in_worker_thread(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("notification delivery crashed; the worker will retry")
    finally:
        connections.close_all()  # this thread's connections only; a pool must get them back


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop when this sync code runs inside it (a sync view or consumer under sync_to_async)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


_tasks: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones to running tasks


def _start_task(loop: asyncio.AbstractEventLoop, ids: list[uuid.UUID]) -> None:
    task = loop.create_task(_deliver_board_async(ids))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def schedule_delivery(*, board: list[uuid.UUID], webhook: list[uuid.UUID]) -> None:
    """After commit: one immediate attempt, never on the calling thread. Board pushes run as a task on the server's
    event loop when there is one (so the in-memory layer reaches this process's sockets), otherwise in a background
    thread; webhooks always run in a background thread."""
    try:
        loop = _server_loop()
        if loop is not None and board:
            ids = list(board)
            # A fresh context: the task must not inherit this sync thread's "executor busy" marker, or its own
            # database calls would be refused as a deadlock; it simply queues behind this thread's work.
            loop.call_soon_threadsafe(_start_task, loop, ids, context=contextvars.Context())
            board = []
        if board or webhook:
            _submit(deliver_ids, [*board, *webhook])
    except Exception:
        # Never fail the request that committed the escalation: the rows are pending and the worker delivers them.
        logger.exception("could not schedule notification delivery")


def schedule_pages(page_ids: list[uuid.UUID]) -> None:
    """After commit: one immediate attempt at these on-call pages, off the calling thread (calls.paging). What is
    not sent now is sent by the worker's next pass."""
    if not page_ids:
        return
    try:
        _submit(_deliver_pages, list(page_ids))
    except Exception:
        logger.exception("could not schedule page delivery")


def _deliver_pages(page_ids: list[uuid.UUID]) -> None:
    paging.pages_deliver(ids=page_ids)


# --- Claiming and recording attempts ----------------------------------------------------------------------------------


def _claim(
    *, ids: list[uuid.UUID] | None = None, limit: int = 50, now: dt.datetime | None = None
) -> list[Notification]:
    """Lease due pending rows: attempts += 1 and hide them for CLAIM_LEASE. Concurrent workers skip locked rows."""
    now = now or timezone.now()
    with transaction.atomic():
        queryset = Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        if ids is not None:
            queryset = queryset.filter(pk__in=ids)
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        else:  # SQLite: the IMMEDIATE transaction already serialises writers
            queryset = queryset.select_for_update()
        claimed = list(queryset.order_by("next_attempt_at")[:limit])
        for row in claimed:
            row.attempts += 1
            row.next_attempt_at = now + CLAIM_LEASE
            Notification.objects.filter(pk=row.pk).update(attempts=row.attempts, next_attempt_at=row.next_attempt_at)
    return claimed


def _record(row: Notification, error: str | None, *, permanent: bool = False, now: dt.datetime | None = None) -> str:
    """Store the attempt's outcome: delivered, retry later with back-off, or failed (gave up)."""
    now = now or timezone.now()
    if error is None:
        Notification.objects.filter(pk=row.pk).update(
            status=Notification.Status.DELIVERED, delivered_at=now, last_error=""
        )
        return Notification.Status.DELIVERED
    schedule = _backoff(row)
    if permanent or row.attempts >= len(schedule) + 1:
        Notification.objects.filter(pk=row.pk).update(status=Notification.Status.FAILED, last_error=error[:200])
        logger.warning(
            "notification gave up channel=%s notification=%s attempts=%s error=%s",
            row.channel,
            row.pk,
            row.attempts,
            error[:200],
        )
        return Notification.Status.FAILED
    delay = schedule[min(row.attempts, len(schedule)) - 1]
    Notification.objects.filter(pk=row.pk).update(
        next_attempt_at=now + dt.timedelta(seconds=delay), last_error=error[:200]
    )
    logger.info("notification retry channel=%s notification=%s in=%ss error=%s", row.channel, row.pk, delay, error)
    return Notification.Status.PENDING


# --- Board (channel layer) --------------------------------------------------------------------------------------------


def _board_message(row: Notification) -> tuple[str, dict[str, str]]:
    escalation = Escalation.objects.only("pk", "call_id", "organization_id").get(pk=row.escalation_id)
    message = {
        "type": "escalation.changed",
        "escalation_id": str(escalation.pk),
        "call_id": str(escalation.call_id),
        "event": row.event,
        "notification_id": str(row.pk),  # a board that also polls the feed pushes each change once
    }
    return board_group(row.organization_id), message


async def _group_send(group: str, message: dict[str, str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    await asyncio.wait_for(layer.group_send(group, message), timeout=GROUP_SEND_TIMEOUT)


async def _deliver_board_async(ids: list[uuid.UUID]) -> None:
    """The immediate board attempt as a task on the server's loop; its database work runs in the server's sync
    thread like any consumer's (SQLite's shared-cache test database cannot take writes from several threads)."""
    try:
        claimed = await database_sync_to_async(_claim)(ids=ids)
        for row in claimed:
            error = None
            try:
                group, message = await database_sync_to_async(_board_message)(row)
                await _group_send(group, message)
            except Exception as exc:
                error = type(exc).__name__
            await database_sync_to_async(_record)(row, error)
    except Exception:
        logger.exception("board notification attempt crashed; the worker will retry")


def _attempt_board(row: Notification) -> str | None:
    try:
        group, message = _board_message(row)
        async_to_sync(_group_send)(group, message)
    except Exception as exc:
        return type(exc).__name__
    return None


# --- Webhook ----------------------------------------------------------------------------------------------------------


class UnsafeWebhookTarget(Exception):
    """The webhook URL is not https, or resolves to an address we must not call (SSRF guard)."""


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def resolve_webhook_target(host: str, port: int) -> list[tuple[int, str]]:
    """(family, address) pairs for host, refusing the lot when ANY of them is not a public address.

    Raises UnsafeWebhookTarget, or OSError when the name does not resolve (a retryable failure).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[tuple[int, str]] = [(info[0], str(info[4][0])) for info in infos]
    if not addresses:
        raise OSError("no addresses")
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for _family, address in addresses:
            if not _address_is_public(address):
                raise UnsafeWebhookTarget("address_not_public")
    return addresses


def check_webhook_url(url: str) -> tuple[str, int]:
    """Host and port of an acceptable webhook URL; raises UnsafeWebhookTarget before any connection otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeWebhookTarget("malformed_url") from None
    allowed = {"https", "http"} if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS else {"https"}
    if parts.scheme not in allowed:
        raise UnsafeWebhookTarget("scheme_not_https")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeWebhookTarget("malformed_url")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves and checks the host at connect time and connects to the checked address, so a DNS answer that
    changes between a check and the connection (rebinding) cannot reach an internal address. TLS still verifies
    the certificate against the URL's host name (httpcore passes the origin host as server_hostname)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for _family, address in resolve_webhook_target(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError("no address")


def ssl_context() -> ssl.SSLContext:
    """The TLS context for webhook calls (tests replace it to trust their local receiver's certificate)."""
    return ssl.create_default_context()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    header: str, secret: str, body: bytes, *, now: float | None = None, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: parse `t=…,v1=…` (several v1 allowed during secret rotation), check the age, compare
    in constant time."""
    try:
        pairs = [item.split("=", 1) for item in header.split(",")]
        timestamp = int(next(value for key, value in pairs if key.strip() == "t"))
    except (ValueError, StopIteration):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return any(key.strip() == "v1" and hmac.compare_digest(value, expected) for key, value in pairs)


def webhook_body(row: Notification, escalation: Escalation) -> bytes:
    """The POSTed JSON: ids, levels and codes only (no transcript, phone numbers or names)."""
    codes = reason_codes(escalation)
    payload = {
        "id": str(row.pk),  # the event id: the same on every retry, for the receiver's dedupe
        "type": row.event,
        "data": {
            "escalation_id": str(escalation.pk),
            "call_id": str(escalation.call_id),
            "organization_id": str(escalation.organization_id),
            "level": escalation.level,
            "reason_code": codes[0] if codes else "",
            "reason_codes": codes,
            "source": escalation.source,
            "status": escalation.status,
            "created_at": escalation.created_at.isoformat(),
        },
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def post_webhook(url: str, secret: str, body: bytes) -> int:
    """POST once (no redirects, short timeouts); returns the HTTP status. Raises UnsafeWebhookTarget or a network
    error."""
    check_webhook_url(url)
    headers = [
        (b"Content-Type", b"application/json"),
        (b"User-Agent", b"voiceagent-webhooks/1"),
        (SIGNATURE_HEADER.encode(), sign(secret, int(time.time()), body).encode()),
    ]
    with httpcore.ConnectionPool(ssl_context=ssl_context(), network_backend=_GuardedBackend(), retries=0) as pool:
        response = pool.request("POST", url, headers=headers, content=body, extensions={"timeout": WEBHOOK_TIMEOUTS})
        return response.status


def _attempt_webhook(row: Notification) -> tuple[str | None, bool]:
    """(error or None, permanent?)."""
    escalation = Escalation.objects.select_related("organization").get(pk=row.escalation_id)
    organization = escalation.organization
    if not organization.webhook_url:
        return "webhook_url_removed", True
    try:
        status = post_webhook(organization.webhook_url, organization.webhook_secret, webhook_body(row, escalation))
    except UnsafeWebhookTarget as exc:
        logger.warning("webhook target refused organization=%s reason=%s", organization.pk, exc)
        return f"refused:{exc}", True
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, OSError, ssl.SSLError) as exc:
        return type(exc).__name__, False
    if 200 <= status < 300:
        return None, False
    return f"http_{status}", False


# --- Delivering -------------------------------------------------------------------------------------------------------


def _deliver_claimed(rows: list[Notification], now: dt.datetime | None = None) -> dict[str, int]:
    counts: dict[str, int] = {
        Notification.Status.DELIVERED: 0,
        Notification.Status.PENDING: 0,
        Notification.Status.FAILED: 0,
    }
    for row in rows:
        if row.channel == Notification.Channel.BOARD:
            error, permanent = _attempt_board(row), False
        else:
            error, permanent = _attempt_webhook(row)
        counts[_record(row, error, permanent=permanent, now=now)] += 1
    return counts


def deliver_ids(notification_ids: list[uuid.UUID]) -> dict[str, int]:
    """One attempt for these rows (if still pending and due): the immediate attempt after commit."""
    return _deliver_claimed(_claim(ids=list(notification_ids)))


def deliver_due(*, limit: int = 50, now: dt.datetime | None = None) -> dict[str, int]:
    """One worker pass: attempt up to `limit` due pending rows, then the on-call paging pass (re-pages due, pages
    due). `now` lets tests step through the back-off and the re-page intervals."""
    counts = _deliver_claimed(_claim(limit=limit, now=now), now=now)
    try:
        paged = paging.paging_pass(now=now, limit=limit)
    except Exception:  # a paging bug must not stop board pushes and webhooks; the next pass tries again
        logger.exception("paging pass crashed")
        return counts
    counts[Notification.Status.DELIVERED] += paged[paging.PageStatus.SENT]
    counts[Notification.Status.FAILED] += paged[paging.PageStatus.FAILED]
    return counts


def notifications_prune(*, older_than: dt.timedelta = dt.timedelta(days=30)) -> int:
    """Delete delivered rows past retention (failed ones stay for inspection)."""
    cutoff = timezone.now() - older_than
    deleted, _ = Notification.objects.filter(status=Notification.Status.DELIVERED, delivered_at__lt=cutoff).delete()
    return deleted
