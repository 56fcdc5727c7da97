"""What the board and the escalation page show about an escalation beyond its ids (read by the board's audited
fetch). This module holds the paging history; the board adds the rest."""

from __future__ import annotations

from typing import Any

from calls.models import Escalation


def escalation_pages(escalation: Escalation) -> list[dict[str, Any]]:
    """One dict per page attempt, in paging order: `person` (name), `channel` (sms / email), `status` (queued /
    sent / failed / delivered / canceled) with its label, `at` (when it was paged, aware), `sent_at`,
    `delivered_at`, `tries`, `error` (a code, never a body) and `acknowledged_by` (the person's name when this
    person acknowledged the escalation by replying ACK, else None)."""
    acknowledger = escalation.acknowledged_by_person_id
    return [
        {
            "person": page.person_name,
            "channel": page.channel,
            "channel_label": page.get_channel_display(),
            "status": page.status,
            "status_label": page.get_status_display(),
            "at": page.created_at,
            "sent_at": page.sent_at,
            "delivered_at": page.delivered_at,
            "tries": page.tries,
            "error": page.last_error,
            "acknowledged_by": page.person_name if acknowledger and page.person_id == acknowledger else None,
        }
        for page in escalation.pages.order_by("step", "channel")
    ]
