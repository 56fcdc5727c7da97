"""Per-clinic retention: delete patient data older than the clinic's retention days (ASVS 14.2.7).

Ages count from the call's start. Live calls are never touched (the reaper ends them first).

- call_retention_days: whole calls go, with their transcript, intake, escalations and notifications.
- intake_retention_days: the intake goes and the caller's name is blanked on the call (the name is what the caller
  told the agent); the call record itself (times, status, phone for callbacks) stays until call retention.
- transcript_retention_days: the transcript goes, and so do escalation evidence and the post-call summary (both
  quote or retell what the caller said).

Webhook receipts (ids of processed deliveries, no patient data) go once the sender can no longer redeliver them
(WEBHOOK_RECEIPT_DAYS), whatever the clinics' settings.

Deletes run in batches, each in its own transaction with its audit row ("retention" principal, the ids it
removed or blanked: one summary row per batch, not one per record); audit rows themselves are never purged.
Running it again finds nothing more: the second run reports zeros.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from calls.audit import audit_record
from calls.models import AuditEvent, Call, CallSummary, Escalation, Intake, TranscriptSegment, WebhookReceipt
from organizations.models import Organization

DEFAULT_BATCH_SIZE = 500
# OpenAI retries a webhook for up to 72 hours (Standard Webhooks' schedule); a receipt kept a week outlives them.
WEBHOOK_RECEIPT_DAYS = 7


@dataclass
class PurgeCounts:
    calls: int = 0
    intakes: int = 0
    transcript_segments: int = 0
    evidence_cleared: int = 0
    summaries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "intakes": self.intakes,
            "transcript_segments": self.transcript_segments,
            "evidence_cleared": self.evidence_cleared,
            "summaries": self.summaries,
        }


@dataclass
class PurgeReport:
    dry_run: bool
    by_clinic: dict[str, PurgeCounts] = field(default_factory=dict)
    webhook_receipts: int = 0

    def totals(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for counts in self.by_clinic.values():
            for key, value in counts.as_dict().items():
                total[key] = total.get(key, 0) + value
        return total


def _cutoff(days: int | None, now: dt.datetime) -> dt.datetime | None:
    return None if days is None else now - dt.timedelta(days=days)


def _ended_calls(organization: Organization, cutoff: dt.datetime) -> QuerySet[Call]:
    return Call.objects.filter(organization=organization, started_at__lt=cutoff).exclude(status=Call.Status.IN_PROGRESS)


def _in_batches(
    ids_query: QuerySet, batch_size: int, remove: Callable[[list[Any]], int], record: Callable[[list[Any]], None]
) -> int:
    """Take up to `batch_size` ids at a time and remove them (with their audit row) until none are left."""
    removed = 0
    while True:
        ids = list(ids_query[:batch_size])
        if not ids:
            return removed
        with transaction.atomic():
            count = remove(ids)
            record(ids)
        removed += count
        if count == 0:  # nothing matched (another purge took them): stop instead of spinning
            return removed


def _recorder(
    organization: Organization, object_type: str, days: int | None, **details: Any
) -> Callable[[list[Any]], None]:
    def record(ids: list[Any]) -> None:
        audit_record(
            action=AuditEvent.Action.DELETE,
            object_type=object_type,
            organization_id=organization.pk,
            object_ids=ids,
            service="retention",  # via "command"
            details={"retention_days": days, **details},
        )

    return record


def purge_organization(
    organization: Organization, *, now: dt.datetime, dry_run: bool, batch_size: int = DEFAULT_BATCH_SIZE
) -> PurgeCounts:
    counts = PurgeCounts()
    call_cutoff = _cutoff(organization.call_retention_days, now)
    intake_cutoff = _cutoff(organization.intake_retention_days, now)
    transcript_cutoff = _cutoff(organization.transcript_retention_days, now)

    if dry_run:
        if call_cutoff:
            counts.calls = _ended_calls(organization, call_cutoff).count()
        if intake_cutoff:
            counts.intakes = Intake.objects.filter(call__in=_ended_calls(organization, intake_cutoff)).count()
        if transcript_cutoff:
            calls = _ended_calls(organization, transcript_cutoff)
            counts.transcript_segments = TranscriptSegment.objects.filter(call__in=calls).count()
            counts.evidence_cleared = Escalation.objects.filter(call__in=calls).exclude(evidence="").count()
            counts.summaries = CallSummary.objects.filter(call__in=calls).count()
        return counts

    if call_cutoff:
        counts.calls = _in_batches(
            _ended_calls(organization, call_cutoff).order_by("started_at").values_list("pk", flat=True),
            batch_size,
            lambda ids: Call.objects.filter(pk__in=ids).delete()[1].get("calls.Call", 0),
            _recorder(organization, "call", organization.call_retention_days, cascade="transcript,intake,escalations"),
        )
    if intake_cutoff:
        calls = _ended_calls(organization, intake_cutoff)

        def remove_intakes(ids: list[Any]) -> int:
            call_ids = list(Intake.objects.filter(pk__in=ids).values_list("call_id", flat=True))
            Call.objects.filter(pk__in=call_ids).exclude(caller_name="").update(caller_name="")
            return Intake.objects.filter(pk__in=ids).delete()[0]

        counts.intakes = _in_batches(
            Intake.objects.filter(call__in=calls).order_by("pk").values_list("pk", flat=True),
            batch_size,
            remove_intakes,
            _recorder(organization, "intake", organization.intake_retention_days, cleared="call.caller_name"),
        )
    if transcript_cutoff:
        calls = _ended_calls(organization, transcript_cutoff)
        counts.transcript_segments = _in_batches(
            TranscriptSegment.objects.filter(call__in=calls).order_by("pk").values_list("pk", flat=True),
            batch_size,
            lambda ids: TranscriptSegment.objects.filter(pk__in=ids).delete()[0],
            _recorder(organization, "transcriptsegment", organization.transcript_retention_days),
        )
        counts.evidence_cleared = _in_batches(
            Escalation.objects.filter(call__in=calls).exclude(evidence="").order_by("pk").values_list("pk", flat=True),
            batch_size,
            lambda ids: Escalation.objects.filter(pk__in=ids).update(evidence=""),
            _recorder(organization, "escalation", organization.transcript_retention_days, cleared="evidence"),
        )
        counts.summaries = _in_batches(
            CallSummary.objects.filter(call__in=calls).order_by("pk").values_list("pk", flat=True),
            batch_size,
            lambda ids: CallSummary.objects.filter(pk__in=ids).delete()[0],
            _recorder(organization, "callsummary", organization.transcript_retention_days),
        )
    return counts


def purge_expired(
    *, dry_run: bool = False, now: dt.datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> PurgeReport:
    """Purge every clinic that has a retention limit; returns counts per clinic (slug)."""
    now = now or timezone.now()
    report = PurgeReport(dry_run=dry_run)
    organizations = Organization.objects.exclude(
        transcript_retention_days=None, intake_retention_days=None, call_retention_days=None
    ).order_by("slug")
    for organization in organizations:
        report.by_clinic[organization.slug] = purge_organization(
            organization, now=now, dry_run=dry_run, batch_size=batch_size
        )
    report.webhook_receipts = webhook_receipts_prune(now=now, dry_run=dry_run, batch_size=batch_size)
    return report


def webhook_receipts_prune(*, now: dt.datetime, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete receipts older than WEBHOOK_RECEIPT_DAYS, in batches; returns how many (would) go."""
    old = WebhookReceipt.objects.filter(received_at__lt=now - dt.timedelta(days=WEBHOOK_RECEIPT_DAYS))
    if dry_run:
        return old.count()
    deleted = 0
    while ids := list(old.order_by("received_at").values_list("pk", flat=True)[:batch_size]):
        deleted += WebhookReceipt.objects.filter(pk__in=ids).delete()[0]
    return deleted
