"""Blocking work that must not queue behind (or hold up) Django's one shared sync thread.

Under ASGI every sync view, sync middleware step and default `sync_to_async` call of a process runs on one
thread-sensitive thread. Work that an anonymous client can make slow (the caller-side endpoints) runs here instead,
on a worker thread of its own, so a hostile caller cannot delay the staff API, the console or the Twilio webhooks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections
from django.db.backends.base.base import BaseDatabaseWrapper

# Tests hold their data in one uncommitted connection; they put it here so worker threads use it too (as Django's
# live test server does with its `connections_override`). Empty in production.
connections_override: dict[str, BaseDatabaseWrapper] = {}
# One connection cannot serve two threads at once (SQLite answers wrong row counts, psycopg interleaves): while it is
# shared, worker threads take turns on it.
_override_lock = threading.Lock()


def _in_worker[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if connections_override:
            with _override_lock:
                shared = dict(connections_override)
                for alias, connection in shared.items():
                    connections[alias] = connection
                try:
                    return fn(*args, **kwargs)
                finally:
                    for alias in shared:  # the pool thread serves later tests too
                        del connections[alias]
        # A worker thread keeps its own connections: drop broken or expired ones first, and give pooled ones back
        # afterwards (CONN_MAX_AGE=0 on PostgreSQL), as Django does around every request on the shared thread.
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return run


async def off_shared_thread[**P, R](fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn(*args, **kwargs)` (ORM work included) on a worker thread, not on the shared sync thread. Context
    variables (request id, call id, audit actor) carry over, as with any `sync_to_async`."""
    return await sync_to_async(_in_worker(fn), thread_sensitive=False)(*args, **kwargs)
