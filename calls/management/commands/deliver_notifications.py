"""The notification worker: delivers pending outbox rows (board pushes, clinic webhooks) with back-off, and makes
the post-call summaries of ended calls (calls.summaries), one per pass so escalations never wait behind them.

Run one per deployment (several are safe: rows are leased with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL),
or from cron with --once.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

from calls import notifications, summaries


class Command(BaseCommand):
    help = (
        "Deliver pending escalation notifications (live board and clinic webhooks) and make post-call summaries, "
        "retrying with back-off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due now, then exit (cron, tests).")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds to sleep when nothing is due.")
        parser.add_argument("--batch", type=int, default=50, help="Rows leased per pass.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1 or options["interval"] <= 0:
            self.stderr.write("--batch must be at least 1 and --interval above 0")
            raise SystemExit(2)
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        if not options["once"]:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        totals = {"delivered": 0, "pending": 0, "failed": 0}
        summary_totals = {"done": 0, "pending": 0, "failed": 0}
        last_prune = 0.0
        while not stopping:
            if not connection.in_atomic_block:  # (a test's transaction)
                close_old_connections()  # a database restart between passes must not kill the worker
            try:
                counts = notifications.deliver_due(limit=options["batch"])
                made = summaries.summarize_due(limit=1)
            except Exception as exc:  # the database is down: say so, wait, try again
                if options["once"]:
                    raise
                self.stderr.write(f"delivery pass failed: {type(exc).__name__}")
                time.sleep(min(30.0, options["interval"] * 5))
                continue
            for status, count in counts.items():
                totals[status] += count
            for status, count in made.items():
                summary_totals[status] += count
            if time.monotonic() - last_prune > 3600:
                notifications.notifications_prune(older_than=dt.timedelta(days=30))
                last_prune = time.monotonic()
            if options["once"]:
                # Keep going while full batches come back; rows retried later are not due again within this run.
                if sum(counts.values()) < options["batch"] and not sum(made.values()):
                    break
                continue
            if not sum(counts.values()) and not sum(made.values()):
                time.sleep(options["interval"])
        self.stdout.write(
            f"delivered={totals['delivered']} pending={totals['pending']} failed={totals['failed']} "
            f"summaries_done={summary_totals['done']} summaries_pending={summary_totals['pending']} "
            f"summaries_failed={summary_totals['failed']}"
        )
