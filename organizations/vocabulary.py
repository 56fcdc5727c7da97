"""The words every layer shares about how serious a call is, defined once.

Triage (calls.triage) answers with a `TriageLevel`; an escalation (calls.models.Escalation) carries an
`EscalationLevel`; a clinic's extra phrases (organizations.models.EscalationPhrase) name the level they raise; an
intake records an `Urgency`. They live here, in the lowest domain app, because clinic configuration (this app)
already needs them and every app above imports downward.
"""

from __future__ import annotations

from django.db import models


class EscalationLevel(models.TextChoices):
    """How an escalation asks staff to act, most severe first."""

    EMERGENCY = "emergency", "Emergency"
    URGENT = "urgent", "Urgent"
    HUMAN = "human", "Human requested"
    UNCERTAIN = "uncertain", "Agent uncertain"

    @property
    def severity(self) -> int:
        """Higher is more severe; a call keeps the highest level it reached."""
        return ESCALATION_SEVERITY[self]


ESCALATION_SEVERITY: dict[str, int] = {
    EscalationLevel.UNCERTAIN: 1,
    EscalationLevel.HUMAN: 2,
    EscalationLevel.URGENT: 3,
    EscalationLevel.EMERGENCY: 4,
}

# Levels a clinic's extra phrase may raise (the agent's own uncertainty is not something a caller says).
PHRASE_LEVELS = (EscalationLevel.EMERGENCY, EscalationLevel.URGENT, EscalationLevel.HUMAN)
PHRASE_LEVEL_CHOICES = [(level.value, level.label) for level in PHRASE_LEVELS]


class TriageLevel(models.TextChoices):
    """What triage concluded about one caller utterance: an escalation level, or routine (nothing to raise)."""

    EMERGENCY = "emergency", "Emergency"
    URGENT = "urgent", "Urgent"
    HUMAN = "human", "Human requested"
    ROUTINE = "routine", "Routine"


class Urgency(models.TextChoices):
    """The urgency an intake records (the agent's `complete_intake`), shown on the call."""

    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"
    EMERGENCY = "emergency", "Emergency"


def severity_of(level: str) -> int:
    """0 for routine or no level, else the escalation level's severity."""
    return ESCALATION_SEVERITY.get(level, 0)


class PageChannel(models.TextChoices):
    """How an on-call person is paged (calls.models.Page)."""

    SMS = "sms", "SMS"
    EMAIL = "email", "E-mail"


class PageStatus(models.TextChoices):
    """One page attempt's outcome, as staff see it on the escalation and the board."""

    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Not sent (acknowledged or resolved first)"


class PagingAction(models.TextChoices):
    """What a clinic does with a new escalation of one level (organizations.models.PagingRule)."""

    PAGE = "page", "Page the on-call list until acknowledged"
    BOARD = "board", "Board only"


# A level with no PagingRule row follows these: (action, re-page interval in minutes).
DEFAULT_PAGING: dict[str, tuple[str, int]] = {
    EscalationLevel.EMERGENCY: (PagingAction.PAGE, 3),
    EscalationLevel.URGENT: (PagingAction.PAGE, 10),
    EscalationLevel.HUMAN: (PagingAction.BOARD, 10),
    EscalationLevel.UNCERTAIN: (PagingAction.BOARD, 10),
}


# The urgency an escalation level means: a call escalated as an emergency is an emergency call, whatever its intake
# said (or if it never got one). Asking for a human or the agent's uncertainty says nothing about urgency.
URGENCY_OF_ESCALATION: dict[str, str] = {
    EscalationLevel.EMERGENCY: Urgency.EMERGENCY,
    EscalationLevel.URGENT: Urgency.URGENT,
}
URGENCY_RANK: dict[str, int] = {Urgency.ROUTINE: 1, Urgency.URGENT: 2, Urgency.EMERGENCY: 3}


def highest_urgency(urgency: str, escalation_level: str) -> str:
    """The more urgent of an intake's urgency and what the call's highest escalation means ('' when neither)."""
    from_escalation = URGENCY_OF_ESCALATION.get(escalation_level, "")
    return max(urgency, from_escalation, key=lambda value: URGENCY_RANK.get(value, 0))
