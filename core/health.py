"""Health endpoints for load balancers and the process-wide drain flag.

GET /healthz: the process is alive (200 {"status": "ok"}); touches nothing else.
GET /readyz: this process should get new traffic: the database answers, the channel layer carries a message within
READYZ_CHANNEL_TIMEOUT seconds, and the process is not draining. Otherwise 503 {"status": "draining"|"unavailable",
"checks": {...}}. Neither needs auth or returns patient data; both are exempt from the SSL redirect (probes speak
plain http inside the network) and never touch the session.

Drain mode (deploys): `set_draining(True)` makes /readyz answer 503 "draining" so the balancer stops sending new
calls while live ones finish; `is_draining()` is what call-start paths consult.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

READYZ_CHANNEL_TIMEOUT = 1.0

_draining = threading.Event()


def set_draining(value: bool = True) -> None:
    """Put this process in (or out of) drain mode."""
    if value:
        _draining.set()
    else:
        _draining.clear()


def is_draining() -> bool:
    return _draining.is_set()


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


async def _channel_round_trip(timeout: float) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    channel = await asyncio.wait_for(layer.new_channel("readyz."), timeout)
    marker = uuid.uuid4().hex
    await asyncio.wait_for(layer.send(channel, {"type": "readyz.ping", "marker": marker}), timeout)
    message = await asyncio.wait_for(layer.receive(channel), timeout)
    return message.get("marker") == marker


def _channel_layer_ok() -> bool:
    try:
        return async_to_sync(_channel_round_trip)(READYZ_CHANNEL_TIMEOUT)
    except Exception:
        return False


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": "ok" if _database_ok() else "unavailable",
        "channel_layer": "ok" if _channel_layer_ok() else "unavailable",
        "draining": is_draining(),
    }
    if checks["draining"]:
        status = "draining"
    elif "unavailable" in (checks["database"], checks["channel_layer"]):
        status = "unavailable"
    else:
        status = "ok"
    return JsonResponse({"status": status, "checks": checks}, status=200 if status == "ok" else 503)
