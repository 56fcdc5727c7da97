"""`manage.py purge_expired [--dry-run] [--json]`: delete patient data past each clinic's retention days.

Run it daily (cron, a systemd timer or the platform's scheduler). Safe to repeat: a second run reports zeros.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from calls.retention import DEFAULT_BATCH_SIZE, purge_expired


class Command(BaseCommand):
    help = "Delete transcripts, intakes and calls older than each clinic's retention days (audit rows stay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Rows per transaction.")
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            self.stderr.write("--batch-size must be at least 1")
            raise SystemExit(2)
        report = purge_expired(dry_run=options["dry_run"], batch_size=batch_size)
        if options["json"]:
            body = {
                "dry_run": report.dry_run,
                "clinics": {slug: counts.as_dict() for slug, counts in report.by_clinic.items()},
                "totals": report.totals(),
                "webhook_receipts": report.webhook_receipts,
            }
            self.stdout.write(json.dumps(body, sort_keys=True))
            return
        verb = "would delete" if report.dry_run else "deleted"
        if report.webhook_receipts:
            self.stdout.write(f"webhook receipts: {verb} {report.webhook_receipts}")
        if not report.by_clinic:
            self.stdout.write("No clinic has a retention limit; nothing to purge.")
        for slug, counts in report.by_clinic.items():
            self.stdout.write(
                f"{slug}: {verb} {counts.calls} call(s), {counts.intakes} intake(s), "
                f"{counts.transcript_segments} transcript segment(s); cleared evidence on "
                f"{counts.evidence_cleared} escalation(s)"
            )
        totals = report.totals()
        if report.by_clinic:
            self.stdout.write(
                f"total: {verb} {totals['calls']} call(s), {totals['intakes']} intake(s), "
                f"{totals['transcript_segments']} transcript segment(s)"
            )
