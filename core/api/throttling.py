"""Fixed-window rate limits on the shared cache (Redis in production), atomic under parallel bursts.

DRF's SimpleRateThrottle reads the request history, appends and writes it back: two processes that read at the same
time both pass. Here each request is one atomic `add`/`incr` on a per-window counter, so N parallel requests see N
distinct counts and at most `limit` of them pass.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

DEFAULT_RATES = {"caller_ip": "30/min", "caller_org": "300/min", "caller_org_ip": "10/min"}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'30/min' -> (30, 60). Raises ValueError for anything else (settings validate rates at start)."""
    match = _RATE_RE.match(rate)
    if not match:
        raise ValueError(f"not a rate like 30/min: {rate!r}")
    return int(match.group(1)), _PERIODS[match.group(2)[0]]


def _shared_count(cache_key: str, period: int) -> int:
    if cache.add(cache_key, 1, timeout=period + 1):
        return 1
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr: this request opens the window again
        cache.add(cache_key, 1, timeout=period + 1)
        return 1


# --- fault tolerance: the shared counter's store (Redis) is down ------------------------------------------------------
# Fail open to a per-process counter with the same limits, so calls keep starting during a Redis outage (a caller
# in distress must reach the clinic: call paths answer no HTTP 5xx while Redis is down), while one
# client still cannot flood a process. Across N processes a client may get up to N x limit for the outage.
_local_counts: dict[str, int] = {}
_local_lock = threading.Lock()


def _local_count(cache_key: str, window: int) -> int:
    with _local_lock:
        if len(_local_counts) > 10_000:  # old windows: keep memory bounded
            suffix = f":{window}"
            for stale in [k for k in _local_counts if not k.endswith(suffix)]:
                del _local_counts[stale]
        _local_counts[cache_key] = _local_counts.get(cache_key, 0) + 1
        return _local_counts[cache_key]


def _window(key: str, period: int, now: float | None) -> tuple[str, int, float]:
    """`key`'s current window: (its counter's cache key, the window number, seconds until it resets)."""
    now = time.time() if now is None else now
    window = int(now // period)
    return f"throttle:{key}:{window}", window, (window + 1) * period - now


def hit(key: str, limit: int, period: int, *, now: float | None = None) -> tuple[bool, float]:
    """Count one request against `key`'s current window; (allowed, seconds until the window resets)."""
    cache_key, window, wait = _window(key, period, now)
    try:
        count = _shared_count(cache_key, period)
    except Exception as exc:  # redis ConnectionError/TimeoutError: count in this process instead (fail open)
        logger.warning("throttle store unavailable (%s); counting in this process", type(exc).__name__)
        count = _local_count(cache_key, window)
    return count <= limit, wait


def exhausted(key: str, limit: int, period: int, *, now: float | None = None) -> float | None:
    """Seconds until `key`'s window resets when the window already holds `limit` requests (the next one would be
    refused), else None. Reads without counting; None too when the store cannot be read (the caller then counts)."""
    cache_key, _window_number, wait = _window(key, period, now)
    try:
        count = cache.get(cache_key)
    except Exception:  # the store is down: let the request reach the throttle, which fails open to a local count
        return None
    if not isinstance(count, int) or count < limit:
        return None
    return wait


def rate_for(scope: str) -> tuple[int, int]:
    # Read at request time, so `settings.CALLER_THROTTLE_RATES` overrides (tests, reloads) apply at once.
    return parse_rate({**DEFAULT_RATES, **getattr(settings, "CALLER_THROTTLE_RATES", {})}[scope])


class FixedWindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def rate(self) -> tuple[int, int]:
        return rate_for(self.scope)

    def ident(self, request: Request, view: APIView) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        ident = self.ident(request, view)
        if ident is None:
            return True
        limit, period = self.rate()
        allowed, wait = hit(f"{self.scope}:{ident}", limit, period)
        self._wait = None if allowed else wait
        return allowed

    def wait(self) -> float | None:
        return self._wait


class CallerIpThrottle(FixedWindowThrottle):
    """Per client IP (REST_FRAMEWORK NUM_PROXIES decides how much of X-Forwarded-For to trust)."""

    scope = "caller_ip"

    def ident(self, request: Request, view: APIView) -> str | None:
        # No REMOTE_ADDR (some WSGI hosts, test clients): one shared bucket rather than no limit.
        return (self.get_ident(request) or "unknown")[:100]


class CallerOrgThrottle(FixedWindowThrottle):
    """Per clinic, after its publishable key authenticated the request."""

    scope = "caller_org"

    def ident(self, request: Request, view: APIView) -> str | None:
        organization = getattr(request.auth, "organization", None)
        return str(organization.pk) if organization is not None else None


class CallAdmissionThrottle(CallerOrgThrottle):
    """New calls (call start, session minting) per clinic, fair between source addresses.

    The clinic's budget (`caller_org`) is its own counter, apart from the requests of calls already admitted, and
    each address may take at most `caller_org_ip` of it per window: a request over that share is refused before it
    touches the clinic's counter. So a few dozen flooding addresses (30 x 10 = the whole 300/min by default) cannot
    exhaust it, while a genuine caller, one call from one address, is admitted. Both counts are atomic (`hit`).
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        organization = self.ident(request, view)
        if organization is None:
            return True
        address = (self.get_ident(request) or "unknown")[:100]
        rates = {**DEFAULT_RATES, **getattr(settings, "CALLER_THROTTLE_RATES", {})}
        share, share_period = parse_rate(rates["caller_org_ip"])
        allowed, wait = hit(f"caller_org_ip:{organization}:{address}", share, share_period)
        if allowed:
            limit, period = self.rate()
            allowed, wait = hit(f"caller_admission:{organization}", limit, period)
        self._wait = None if allowed else wait
        return allowed
