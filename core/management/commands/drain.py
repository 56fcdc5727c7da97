"""`manage.py drain --pid PID`: put a running server process in drain mode before a deploy (core/drain.py).

The process stops taking new calls (/readyz 503 "draining", call start and minting 503 with Retry-After, Twilio
gets fallback TwiML), lets its live calls finish and exits 0 by itself. With --wait this command returns when it has.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Command(BaseCommand):
    help = "Drain a server process (SIGUSR1): refuse new calls, exit when its live calls have ended."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pid", type=int, required=True, help="The ASGI server process (daphne or uvicorn).")
        parser.add_argument("--wait", action="store_true", help="Return only when the process has exited.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="With --wait: give up after N seconds.")

    def handle(self, *args: Any, pid: int, wait: bool, timeout: float, **options: Any) -> None:
        if pid <= 1:
            raise CommandError("--pid must be a server process id")
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            raise CommandError(f"no process {pid}") from None
        self.stdout.write(f"draining {pid}")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise CommandError(f"process {pid} still running after {timeout:g}s")
            time.sleep(0.2)
        self.stdout.write(f"{pid} exited")
