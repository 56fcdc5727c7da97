"""Live calls of this process, and drain mode for deploys.

Every transport that holds a call open in this process (the phone bridge's media socket, the browser sideband task)
registers it here while it lives. That gives three things:

- **drain**: `SIGUSR1` (installed by `install_drain_signal()` when voiceagent.asgi loads, or sent by
  `manage.py drain --pid`) puts the process in drain mode: /readyz answers 503 "draining", new calls are refused
  (503 `draining` with Retry-After; Twilio gets fallback TwiML), live calls go on. When the last live call and the
  last in-flight HTTP request have ended, the process sends itself SIGTERM and exits 0 (daphne and uvicorn both exit
  cleanly on SIGTERM). So a deploy never cuts a live call (docs/facts.md#sigterm-drops-websockets; README, Draining).
- **heartbeat**: every LIVE_CALL_HEARTBEAT_SECONDS the registered calls are handed to the heartbeat the call domain
  installed (`set_heartbeat`; calls marks them active in one UPDATE), so the reaper only ends calls no living
  process holds any more (a `kill -9`ed one). The platform knows call ids, not the Call model.
- a count for operators and tests (`live_call_count()`).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connection, connections

from core.health import is_draining, set_draining

logger = logging.getLogger(__name__)

CallIdGetter = Callable[[], object]
Heartbeat = Callable[[list[str]], int]

_lock = threading.Lock()
_live: dict[int, CallIdGetter] = {}  # registration key -> returns the call id (or None before it is known)
_keys = itertools.count(1)
_inflight_http = 0
_heartbeat_started = False
_drain_thread: threading.Thread | None = None
_heartbeat: Heartbeat | None = None


# --- live calls -------------------------------------------------------------------------------------------------


def call_opened(call_id: CallIdGetter | object) -> int:
    """Register a call this process now holds; returns the key for `call_closed`. `call_id` may be a callable when
    the id is learnt later (a media socket knows its call only after Twilio's `start`)."""
    getter: CallIdGetter = call_id if callable(call_id) else (lambda: call_id)
    with _lock:
        key = next(_keys)
        _live[key] = getter
    _ensure_heartbeat()
    return key


def call_closed(key: int | None) -> None:
    if key is None:
        return
    with _lock:
        _live.pop(key, None)


def live_call_count() -> int:
    with _lock:
        return len(_live)


def live_call_ids() -> list[str]:
    with _lock:
        getters = list(_live.values())
    ids = []
    for getter in getters:
        try:
            value = getter()
        except Exception:  # a transport torn down half-way: it has no call to keep alive
            value = None
        if value:
            ids.append(str(value))
    return ids


def refuse_new_calls() -> bool:
    """True while draining: call-start paths answer 503 `draining` (Twilio: fallback TwiML)."""
    return is_draining()


# --- in-flight HTTP requests (core.resilience.RequestDeadline counts them) --------------------------------------


def http_started() -> None:
    global _inflight_http
    with _lock:
        _inflight_http += 1


def http_finished() -> None:
    global _inflight_http
    with _lock:
        _inflight_http = max(0, _inflight_http - 1)


def inflight_http_count() -> int:
    with _lock:
        return _inflight_http


# --- heartbeat --------------------------------------------------------------------------------------------------


def set_heartbeat(heartbeat: Heartbeat) -> None:
    """Install what a beat does with this process' live call ids (the calls app does, at start-up)."""
    global _heartbeat
    _heartbeat = heartbeat


def heartbeat_once() -> int:
    """Hand this process' live call ids to the installed heartbeat; returns how many calls it marked."""
    ids = live_call_ids()
    if not ids or _heartbeat is None:
        return 0
    own_connection = not connection.in_atomic_block  # (a test's transaction: leave its connection alone)
    try:
        if own_connection:
            close_old_connections()
        return _heartbeat(ids)
    finally:
        if own_connection:
            connections.close_all()  # this thread's connection goes back to the pool


def _heartbeat_loop() -> None:
    while True:
        time.sleep(settings.LIVE_CALL_HEARTBEAT_SECONDS)
        try:
            heartbeat_once()
        except Exception as exc:  # the database is down: the next beat tries again
            logger.warning("live-call heartbeat failed: %s", type(exc).__name__)


def _ensure_heartbeat() -> None:
    global _heartbeat_started
    with _lock:
        if _heartbeat_started:
            return
        _heartbeat_started = True
    threading.Thread(target=_heartbeat_loop, name="live-call-heartbeat", daemon=True).start()


# --- drain ------------------------------------------------------------------------------------------------------


def _drain_until_idle(exit_process: Callable[[], None]) -> None:
    deadline = time.monotonic() + settings.DRAIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if live_call_count() == 0 and inflight_http_count() == 0:
            logger.warning("drained: no live calls left, exiting")
            break
        time.sleep(0.2)
    else:
        logger.warning("drain timed out with %s live calls; exiting anyway", live_call_count())
    exit_process()


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def start_drain(*, exit_process: Callable[[], None] | None = _terminate_self) -> None:
    """Enter drain mode; with `exit_process` (default: SIGTERM to this process) call it once idle. Idempotent."""
    global _drain_thread
    set_draining(True)
    with _lock:
        if _drain_thread is not None or exit_process is None:
            return
        _drain_thread = threading.Thread(target=_drain_until_idle, args=(exit_process,), name="drain", daemon=True)
    logger.warning("drain mode: refusing new calls, %s live calls to finish", live_call_count())
    _drain_thread.start()


def _on_drain_signal(signum: int, frame: object) -> None:
    # Signal handlers run between bytecodes on the main thread: only start the watcher thread here.
    start_drain()


def install_drain_signal(signum: int = signal.SIGUSR1) -> bool:
    """Install the drain handler (only possible from the main thread, where ASGI servers import the app)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signum, _on_drain_signal)
    return True
