"""Blocking work that must not queue behind (or hold up) the sync steps of a request under ASGI.

Under Django's ASGI handler each request runs its sync parts (sync middleware, sync views, default `sync_to_async`
calls) on one thread-sensitive thread of its own (asgiref's ThreadSensitiveContext, opened per request), where they
queue behind each other. Work that an anonymous client can make slow (the caller-side endpoints) runs on a worker
thread instead, so it never queues behind or ahead of the request's other sync steps. What a hostile caller can
still take is CPU under the one GIL; core/floodgate.py keeps its refused requests from taking that.
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
