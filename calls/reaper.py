"""The reaper: live calls nobody holds any more reach a terminal state.

A process that dies hard (`kill -9`, OOM, a lost machine) cannot end its calls. Every process that holds a call bumps
its `last_activity_at` (segments as they are stored, calls/services.py; a heartbeat for calls it holds open,
core/drain.py), so a call `in_progress` whose last activity (or start, if it never had any) is older than
REAPER_IDLE_SECONDS was interrupted: it becomes `abandoned` with end reason `interrupted`, ended at its last
activity. Idempotent and safe to run from several places at once (rows are locked and re-checked).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls.models import Call
from calls.services import call_end

logger = logging.getLogger(__name__)


def calls_mark_active(call_ids: list[str]) -> int:
    """The live-call heartbeat (installed into core.drain): this process still holds these calls."""
    return Call.objects.filter(pk__in=call_ids, status=Call.Status.IN_PROGRESS).update(last_activity_at=timezone.now())


def _idle_since(cutoff: dt.datetime) -> Q:
    return Q(last_activity_at__lt=cutoff) | Q(last_activity_at__isnull=True, started_at__lt=cutoff)


def calls_reap(*, idle_seconds: float, now: dt.datetime | None = None, limit: int = 500) -> list[Call]:
    """End live calls with no activity for `idle_seconds`; returns the calls it ended."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=idle_seconds)
    candidates = list(
        Call.objects.filter(status=Call.Status.IN_PROGRESS)
        .filter(_idle_since(cutoff))
        .order_by("started_at")
        .values_list("pk", flat=True)[:limit]
    )
    reaped: list[Call] = []
    for pk in candidates:
        with transaction.atomic():
            call = (
                Call.objects.select_for_update()
                .filter(pk=pk, status=Call.Status.IN_PROGRESS)
                .filter(_idle_since(cutoff))
                .annotate(last_seen=Coalesce("last_activity_at", "started_at"))
                .first()
            )
            if call is None:  # ended or active again since the scan
                continue
            # Still locked by this transaction: call_end re-reads the row, and interrupted means abandoned.
            ended = call_end(call=call, reason=Call.EndReason.INTERRUPTED, ended_at=call.last_seen)
        logger.warning("call interrupted (no activity for %ss) call=%s", int(idle_seconds), ended.pk)
        reaped.append(ended)
    return reaped
