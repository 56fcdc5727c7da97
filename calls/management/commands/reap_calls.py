"""`manage.py reap_calls`: end live calls whose process died (see calls/reaper.py).

Run it from cron every minute (`reap_calls`), or as a long-running process (`reap_calls --every 30`).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from calls.reaper import calls_reap


class Command(BaseCommand):
    help = "Mark live calls with no activity for a while as abandoned (end reason: interrupted)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle-seconds",
            type=float,
            default=None,
            help="Calls with no activity for this long are reaped (default REAPER_IDLE_SECONDS).",
        )
        parser.add_argument("--every", type=float, default=0.0, help="Keep running, one pass every N seconds.")

    def handle(self, *args: Any, **options: Any) -> None:
        idle = options["idle_seconds"] if options["idle_seconds"] is not None else settings.REAPER_IDLE_SECONDS
        if idle <= 0 or options["every"] < 0:
            self.stderr.write("--idle-seconds must be above 0 and --every not negative")
            raise SystemExit(2)
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        if options["every"]:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        total = 0
        while True:
            close_old_connections()
            try:
                total += len(calls_reap(idle_seconds=idle))
            except Exception as exc:  # the database is down: try again next pass
                if not options["every"]:
                    raise
                self.stderr.write(f"reap pass failed: {type(exc).__name__}")
            if not options["every"] or stopping:
                break
            # Sleep in short steps: SIGTERM (the server stopping, `manage.py serve`) ends the wait at once.
            wake = time.monotonic() + options["every"]
            while not stopping and time.monotonic() < wake:
                time.sleep(min(0.5, wake - time.monotonic()))
            if stopping:
                break
        self.stdout.write(f"reaped={total}")
