"""`manage.py summarize_calls`: backfill post-call summaries (calls/summaries.py).

Ended calls without a summary, and those whose summary failed, are made due now and summarized here, one after the
other (`--queue-only` leaves them to the notification worker instead). `--redo` redoes finished ones too, e.g.
after changing SUMMARY_MODEL; `--call` limits it to some calls.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls import summaries


class Command(BaseCommand):
    help = "Summarize ended calls that have no post-call summary yet (or a failed one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--call", action="append", default=[], help="Only this call id (repeatable).")
        parser.add_argument("--redo", action="store_true", help="Also redo summaries that are already done.")
        parser.add_argument("--queue-only", action="store_true", help="Queue them for the worker; summarize none.")
        parser.add_argument("--limit", type=int, default=10_000, help="Summarize at most this many here.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            call_ids = [uuid.UUID(value) for value in options["call"]] or None
        except ValueError:
            raise CommandError("--call takes call ids (UUIDs)") from None
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        queued = summaries.summaries_requeue(call_ids=call_ids, redo_done=options["redo"])
        self.stdout.write(f"queued={queued}")
        if options["queue_only"]:
            return
        if not settings.OPENAI_API_KEY:
            raise CommandError("OPENAI_API_KEY is not set: the summaries stay queued for when it is")
        totals = {"done": 0, "pending": 0, "failed": 0}
        while sum(totals.values()) < options["limit"]:
            counts = summaries.summarize_due(limit=1)
            if not sum(counts.values()):
                break  # nothing more is due (a retried row is due again only after its back-off)
            for status, count in counts.items():
                totals[status] += count
        self.stdout.write(f"done={totals['done']} pending={totals['pending']} failed={totals['failed']}")
