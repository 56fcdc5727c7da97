"""What staff need to act on an escalation, as the live board and the escalation page show it.

One place for the words: the human label of each reason code (REASON_LABELS, defined once), the caller's words that
raised it with the matched evidence marked, the callback number, the age against the clinic's acknowledgement
target, and who has been paged (the on-call paging history). The board's socket and page send this only after
recording the read (calls.audit); channel messages still carry ids only.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from calls.models import Escalation, TranscriptSegment
from organizations.clock import clinic_clock, clinic_time

# The human label of each machine reason code (triage rules, the telephony fallback, the sources without codes).
# A code missing here reads as its words ("post_procedure" -> "Post procedure").
REASON_LABELS: dict[str, str] = {
    "chest_pain": "Chest pain",
    "stroke_signs": "Stroke signs",
    "breathing": "Trouble breathing",
    "choking": "Choking",
    "unconscious": "Unconscious",
    "bleeding": "Bleeding",
    "seizure": "Seizure",
    "overdose": "Overdose",
    "poisoning": "Poisoning",
    "self_harm": "Self-harm risk",
    "allergic_reaction": "Allergic reaction",
    "altered_mental_state": "Confused or not responding normally",
    "confusion": "Confusion",
    "head_injury": "Head injury",
    "diabetic_emergency": "Diabetic emergency",
    "pregnancy": "Pregnancy concern",
    "emergency_stated": "Caller said it is an emergency",
    "urgent_stated": "Caller said it is urgent",
    "human_request": "Asked for a person",
    "staff_override": "Staff raised",
    "agent_reported": "Agent raised",
    "agent_uncertain": "Agent unsure",
    "agent_refusal": "Agent could not help",
    "transfer_unanswered": "Transfer not answered",
    "voicemail_left": "Voicemail left",
    "med_gap": "Out of medication",
    "med_reaction": "Medication reaction",
    "dvt": "Possible blood clot",
    "other": "Other",
}

TRIGGER_TEXT_LIMIT = 400  # characters of the caller's line shown around the evidence
_SEGMENTS_SEARCHED = 20  # the caller's latest lines before the escalation, newest first


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code) or code.replace("_", " ").capitalize()


REASON_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def reason_codes(escalation: Escalation) -> list[str]:
    """Machine reason codes only. Triage and the telephony fallback store codes ("chest_pain, stroke_signs",
    "transfer_unanswered"); the agent's tool and staff store free text, which may quote the caller, so it never
    leaves as a code."""
    parts = [part.strip() for part in escalation.reason.split(",") if part.strip()]
    coded = escalation.source in {Escalation.Source.KEYWORD, Escalation.Source.SYSTEM}
    if coded and all(REASON_CODE_RE.match(part) for part in parts):
        return parts
    free_text: dict[str, str] = {
        Escalation.Source.AGENT_TOOL: "agent_reported",
        Escalation.Source.STAFF: "staff_override",
    }
    return [free_text.get(escalation.source, "other")]


def escalation_label(escalation: Escalation) -> str:
    """ "Chest pain, Stroke signs": the reasons of an escalation in words."""
    return ", ".join(reason_label(code) for code in reason_codes(escalation))


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


def _evidence_pattern(phrase: str) -> re.Pattern[str] | None:
    """Triage's evidence is normalised (lower case, punctuation dropped: "cant breathe"); find it in the line as
    said ("can't breathe") by allowing punctuation between letters and any non-word run between words."""
    words = [word for word in re.split(r"\W+", phrase.lower()) if word]
    if not words:
        return None
    parts = [r"[^\w\s]?".join(re.escape(char) for char in word) for word in words]
    return re.compile(r"\b" + r"\W+".join(parts) + r"\b", re.IGNORECASE)


def highlight_spans(text: str, evidence: str) -> list[tuple[int, int]]:
    """(start, end) of the evidence phrases ("a, b") found in `text`, in order; overlapping ones merged
    ("crushing chest" + "chest pain" -> "crushing chest pain")."""
    found: list[tuple[int, int]] = []
    for phrase in evidence.split(","):
        pattern = _evidence_pattern(phrase)
        if pattern is not None:
            found.extend((match.start(), match.end()) for match in pattern.finditer(text))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def trigger_segment(escalation: Escalation) -> TranscriptSegment | None:
    """The caller's line that raised a triage escalation: the latest caller line up to the escalation that holds
    its evidence (else the latest caller line before it). None for escalations not raised from the caller's words.
    """
    if escalation.source != Escalation.Source.KEYWORD:
        return None
    lines = list(
        TranscriptSegment.objects.filter(
            call_id=escalation.call_id,
            speaker=TranscriptSegment.Speaker.CALLER,
            occurred_at__lte=escalation.created_at + dt.timedelta(seconds=5),
        )
        .order_by("-occurred_at", "-seq")
        .only("text", "occurred_at", "seq")[:_SEGMENTS_SEARCHED]
    )
    for line in lines:
        if highlight_spans(line.text, escalation.evidence):
            return line
    return lines[0] if lines else None


def trigger_words(escalation: Escalation) -> dict[str, Any] | None:
    """{"text", "highlights": [[start, end], …]} of the words that raised it, cut to TRIGGER_TEXT_LIMIT around the
    first highlight; staff and agent escalations show their own reason text, unhighlighted."""
    segment = trigger_segment(escalation)
    if segment is None:
        coded = escalation.source in {Escalation.Source.KEYWORD, Escalation.Source.SYSTEM}
        if coded or not escalation.reason:
            return None
        return {"text": escalation.reason[:TRIGGER_TEXT_LIMIT], "highlights": [], "said_at": ""}
    text = segment.text
    spans = highlight_spans(text, escalation.evidence)
    start = 0
    if len(text) > TRIGGER_TEXT_LIMIT:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - TRIGGER_TEXT_LIMIT // 4, len(text) - TRIGGER_TEXT_LIMIT))
        text = text[start : start + TRIGGER_TEXT_LIMIT]
    shown = [[a - start, min(b - start, len(text))] for a, b in spans if a >= start and a - start < len(text)]
    return {
        "text": text,
        "highlights": shown,
        "cut_before": start > 0,
        "cut_after": start + len(text) < len(segment.text),
        "said_at": clinic_clock(segment.occurred_at, escalation.organization),
    }


def pages_shown(escalation: Escalation) -> list[dict[str, str]]:
    """escalation_pages() as the board and the escalation page show them (times in the clinic's zone)."""
    shown = []
    for page in escalation_pages(escalation):
        at = page.get("at")
        shown.append(
            {
                "person": str(page.get("person", "")),
                "channel": str(page.get("channel_label") or page.get("channel", "")),
                "status": str(page.get("status_label") or page.get("status", "")),
                "state": str(page.get("status", "")),
                "at": clinic_clock(at, escalation.organization) if isinstance(at, dt.datetime) else "",
                "acknowledged_by": str(page.get("acknowledged_by") or ""),
            }
        )
    return shown


def escalation_details(escalation: Escalation) -> dict[str, Any]:
    """The patient-facing details of one escalation (caller, callback number, words, pages): patient data, so only
    after an audited read. `escalation` comes with its call and organization selected."""
    call = escalation.call
    organization = escalation.organization
    return {
        "caller_name": call.caller_name,
        "caller_phone": call.caller_phone,
        "callback_url": f"tel:{call.caller_phone}" if call.caller_phone else "",
        "reason_label": escalation_label(escalation),
        "trigger": trigger_words(escalation),
        "created_at_display": clinic_time(escalation.created_at, organization),
        "acknowledged_at_display": clinic_time(escalation.acknowledged_at, organization)
        if escalation.acknowledged_at
        else "",
        "ack_target_seconds": organization.ack_target_seconds(escalation.level),
        "pages": pages_shown(escalation),
        "after_call": escalation.after_call,
    }
