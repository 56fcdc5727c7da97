"""A small circuit breaker for calls to an upstream that may be down (OpenAI's REST endpoints).

After `threshold` consecutive failures the breaker opens: calls are refused at once (the caller answers 503
`upstream_unavailable` with Retry-After instead of making every visitor wait out a time-out) for `reset_after`
seconds. Then it is half-open: one probe call goes through; success closes the breaker, failure opens it again for
another `reset_after`. Process-local on purpose: each process learns the upstream's state from its own calls, and a
shared store (Redis) could itself be down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class BreakerOpen(Exception):
    """Refused without trying; `retry_after` seconds until the next probe may run."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("circuit open")
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(self, *, threshold: int = 5, reset_after: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.reset_after = reset_after
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self.clock() - self._opened_at >= self.reset_after:
            return HALF_OPEN
        return OPEN

    def before_call(self) -> None:
        """Raise BreakerOpen unless this call may go upstream (closed, or the one half-open probe)."""
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return
            if state == HALF_OPEN and not self._probing:
                self._probing = True
                return
            assert self._opened_at is not None
            remaining = self.reset_after - (self.clock() - self._opened_at)
            raise BreakerOpen(retry_after=max(1.0, remaining))

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = self.clock()  # (re)open: a failed probe starts a new wait
            self._probing = False

    def reset(self) -> None:
        self.record_success()
