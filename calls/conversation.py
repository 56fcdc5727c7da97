"""The conversation service: what the clinic does with each thing said on a call, whatever transport carried it.

Every transport (the browser sideband, the browser event-forwarding endpoint, the Twilio media bridge) turns its
protocol into calls of these functions and carries out the plain decision they return:

    decision = caller_utterance_handle(call=call, text=..., item_id=...)
    decision.steering      -> make the agent say this now (emergency: 911 / 988), cancelling what it is saying
    decision.system_note   -> tell the model the clinic's policy for this escalation (urgent / human)
    decision.transfer_to   -> transfer the caller to this number now (phone calls during hours)

One utterance is handled in one transaction: stored idempotently (a redelivered transcript is neither stored nor
triaged twice), triaged, the escalation raised or joined at its level, the system note written, the steering and
transfer decided. The clinic's policy (guidance, transfer rule, steering scripts) lives here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from calls.models import Call, Escalation, TranscriptSegment
from calls.services import (
    SegmentInput,
    call_end,
    escalation_create,
    transcript_segment_append,
    transcript_segments_append,
)
from calls.triage import SELF_HARM, Assessment, assess, assess_agent, extra_phrases_for
from organizations.models import Organization
from organizations.vocabulary import ESCALATION_SEVERITY, EscalationLevel, TriageLevel

logger = logging.getLogger(__name__)

EMERGENCY_STEERING = (
    "URGENT SAFETY INSTRUCTION FROM THE CLINIC SYSTEM: the caller has described a possible medical emergency. "
    "Stop the intake. Tell the caller calmly and clearly to hang up and call 911 right now (or, for thoughts of "
    "suicide or self-harm, to call or text 988). Clinic staff have already been alerted. Keep it short."
)

SELF_HARM_STEERING = (
    "URGENT SAFETY INSTRUCTION FROM THE CLINIC SYSTEM: the caller may be at risk of suicide or self-harm. Stop the "
    "intake. Speak calmly and kindly. Tell the caller they can call or text 988, the Suicide and Crisis Lifeline, "
    "right now, and to call 911 if they or someone else is in immediate danger. Clinic staff have been alerted."
)

SELF_HARM_OTHER_STEERING = (
    "URGENT SAFETY INSTRUCTION FROM THE CLINIC SYSTEM: the caller says someone else may be about to harm or kill "
    "themselves. Stop the intake. Tell the caller calmly to call 911 right now for that person if they are in "
    "danger or cannot be reached, and that 988, the Suicide and Crisis Lifeline, also helps people worried about "
    "someone else. Ask whether they are with the person and keep them talking: do not end the call. Clinic staff "
    "have been alerted."
)

LOST_TURN_TEXT = "[The caller spoke here, but the words could not be transcribed.]"

# Unresolved escalations of these levels already answer a new one of the key's level.
_AT_LEAST = {
    level: [other for other in EscalationLevel if ESCALATION_SEVERITY[other] >= ESCALATION_SEVERITY[level]]
    for level in EscalationLevel
}

# Levels that a live transfer to the clinic's escalation phone answers (an emergency is told to dial 911 instead).
TRANSFER_LEVELS = frozenset({EscalationLevel.URGENT, EscalationLevel.HUMAN})


@dataclass(frozen=True)
class Decision:
    """What the transport must do after one utterance or one agent tool call. Empty fields mean "nothing"."""

    stored: bool = False  # the utterance was new (False: a redelivery, nothing else was done)
    escalation: Escalation | None = None  # the escalation raised (or joined) by it
    created: bool = False  # `escalation` is new: staff are being alerted now
    steering: str = ""  # instructions the agent must follow at once (cancel what it says, respond with these)
    system_note: str = ""  # a note for the model about the clinic's policy; it continues the conversation
    transfer_to: str = ""  # transfer the caller to this number now

    @property
    def escalations(self) -> list[Escalation]:
        return [self.escalation] if self.escalation is not None and self.created else []


NOTHING = Decision()


# --- Clinic policy ----------------------------------------------------------------------------------------------


def escalation_guidance(organization: Organization, level: str, *, now: dt.datetime | None = None) -> str:
    """What the agent should say after an escalation, per the clinic's policy and whether it is open."""
    if level == EscalationLevel.EMERGENCY:
        return (
            "Tell the caller clearly: hang up and call 911 right now (or call or text 988 for thoughts of "
            "self-harm). Clinic staff have been alerted. Do not continue the intake."
        )
    if organization.is_open(now or timezone.now()):
        return (
            "Staff have been alerted. Tell the caller briefly that you are getting a staff member to help them, "
            "and keep collecting their name and callback number in case the line drops."
        )
    policy = organization.after_hours_policy
    if policy == Organization.AfterHoursPolicy.FORWARD_ON_CALL:
        return "The clinic is closed. Tell the caller you are connecting them to the on-call provider."
    if policy == Organization.AfterHoursPolicy.EMERGENCY_ONLY:
        return (
            "The clinic is closed. Tell the caller that if this is an emergency they should call 911, and when "
            "the clinic opens again."
        )
    return (
        "The clinic is closed. Staff have been alerted and will call back when the clinic opens: make sure you "
        "have the caller's name and callback number."
    )


def transfer_target(call: Call, level: str, *, now: dt.datetime | None = None) -> str:
    """The number to transfer a phone caller to for a new escalation of `level`, or "" to keep them with the agent:
    only phone calls, only urgent/human, never once the call is an emergency (the caller was told to dial 911),
    only while the clinic is open and has an escalation phone it may dial (organizations.dialing)."""
    organization = call.organization
    if call.channel != Call.Channel.PHONE or not organization.may_dial(organization.escalation_phone):
        return ""
    if level not in TRANSFER_LEVELS or call.escalation_level == EscalationLevel.EMERGENCY:
        return ""
    return organization.escalation_phone if organization.is_open(now or timezone.now()) else ""


def steering_script(assessment: Assessment) -> str:
    """The words the agent is steered to for an emergency: 911 for someone else's reported intent (the caller
    stays on the line), 988 first for the caller's own, 911 for every other emergency."""
    if assessment.self_harm_other:
        return SELF_HARM_OTHER_STEERING
    return SELF_HARM_STEERING if SELF_HARM in assessment.reasons else EMERGENCY_STEERING


# --- Utterances ---------------------------------------------------------------------------------------------------


def caller_utterance_handle(
    *,
    call: Call,
    text: str,
    item_id: str = "",
    occurred_at: dt.datetime | None = None,
    extra_phrases: Mapping[str, Iterable[str]] | None = None,
    steer: bool = True,
    position: int | None = None,
    metadata: dict | None = None,
) -> Decision:
    """Store one caller utterance, triage it and decide what happens next (see the module docstring).

    `extra_phrases` is the clinic's phrase mapping when the transport caches it (`extra_phrases_for`); None reads
    it. `steer=False` when the agent was already steered to 911/988 on this call: the escalation is still joined,
    the agent is not interrupted a second time. `position` is the utterance's place in the conversation when the
    transport knows it (a transcript that arrives after the agent's reply is still shown before it).

    Words that arrive after the call ended (a caller speaking over the goodbye: OpenAI's transcript comes after
    the response) are stored and triaged too; an escalation they raise is marked `after_call` (the caller needs a
    callback now) and nothing is steered or transferred: there is no call left to steer."""
    text = text.strip()
    if not text:
        return NOTHING
    with transaction.atomic():
        segment = transcript_segment_append(
            call=call,
            speaker=TranscriptSegment.Speaker.CALLER,
            text=text,
            item_id=item_id,
            occurred_at=occurred_at,
            position=position,
            metadata=metadata,  # e.g. the line's source (reported by the browser)
        )
        if segment is None:  # a redelivered transcript is not triaged twice
            return NOTHING
        organization = call.organization
        phrases = extra_phrases if extra_phrases is not None else extra_phrases_for(organization)
        assessment = assess(text, languages=organization.agent_languages, extra_phrases=phrases)
        if assessment.level == TriageLevel.ROUTINE:
            return Decision(stored=True)
        level = EscalationLevel(assessment.level)
        higher = (
            Escalation.objects.filter(call=call, level__in=_AT_LEAST[level])
            .exclude(status=Escalation.Status.RESOLVED)
            .order_by("created_at")
            .first()
        )
        if higher is not None and higher.level != level:
            # A caller already escalated at a higher level ("he says it's getting worse" after the 911 advice):
            # join it; a second, lower alert would only be noise on the board.
            return Decision(stored=True, escalation=higher)
        after_call = call.is_ended
        transfer_to = "" if after_call else transfer_target(call, level)  # before the escalation raises the level
        escalation, created = escalation_create(
            call=call,
            level=level,
            source=Escalation.Source.KEYWORD,
            reason=", ".join(assessment.reasons)[:300],
            evidence=", ".join(assessment.evidence),
            triage=assessment.explanation(),
            after_call=after_call,
        )
        call.refresh_from_db()
        if not created:
            return Decision(stored=True, escalation=escalation)
        guidance = escalation_guidance(organization, level)
        note = f"Escalated ({level}: {', '.join(assessment.reasons)})."
        transcript_segment_append(
            call=call,
            speaker=TranscriptSegment.Speaker.SYSTEM,
            text=f"{note} Said after the call ended: call the caller back now."
            if after_call
            else f"{note} Policy: {guidance}",
            position=segment.position,  # right after the words that raised it
        )
    if after_call:
        return Decision(stored=True, escalation=escalation, created=True)
    if level == EscalationLevel.EMERGENCY:
        return Decision(
            stored=True,
            escalation=escalation,
            created=True,
            steering=steering_script(assessment) if steer else "",
        )
    return Decision(
        stored=True,
        escalation=escalation,
        created=True,
        system_note=f"Clinic system note: {guidance}",
        transfer_to=transfer_to,
    )


KEYPAD_HUMAN = "0"  # as on any phone menu: 0 for a person


def caller_keypad_handle(*, call: Call, key: str) -> Decision:
    """A keypad press (SIP DTMF). `0` asks for a person: a human escalation (joined if one is open), the clinic's
    guidance for the agent, and a transfer while the clinic is open and may be dialled (`transfer_target`, never
    on an emergency). Other keys mean nothing here; nothing happens after the call ended."""
    if key != KEYPAD_HUMAN or call.is_ended:
        return NOTHING
    level = EscalationLevel.HUMAN
    with transaction.atomic():
        transfer_to = transfer_target(call, level)
        escalation, created = escalation_create(
            call=call,
            level=level,
            source=Escalation.Source.SYSTEM,
            reason="keypad_0",
            evidence="The caller pressed 0 to speak with a person.",
        )
        if not created:
            return Decision(stored=True, escalation=escalation)
        guidance = escalation_guidance(call.organization, level)
        transcript_segment_append(
            call=call,
            speaker=TranscriptSegment.Speaker.SYSTEM,
            text=f"Escalated (human: the caller pressed 0). Policy: {guidance}",
        )
    call.refresh_from_db()
    return Decision(
        stored=True,
        escalation=escalation,
        created=True,
        system_note=f"Clinic system note: the caller pressed 0 to speak with a person. {guidance}",
        transfer_to=transfer_to,
    )


def call_end_with_transcript(
    *,
    call: Call,
    reason: str,
    transcript: Sequence[SegmentInput] = (),
    intake: dict | None = None,
    ended_at: dt.datetime | None = None,
) -> Call:
    """End a call with the transcript a client sends along (`POST /api/call/end`): its lines are stored in order
    and every caller line is triaged like a live one (an emergency in it is escalated and reaches staff), then the
    call ends. All in one transaction: an invalid intake (IntakeInvalid) writes nothing. Ending an ended call
    changes nothing, its transcript included (call_end is idempotent)."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().select_related("organization").get(pk=call.pk)
        if locked.is_ended:
            return locked
        phrases = extra_phrases_for(locked.organization) if transcript else {}
        for segment in transcript:
            if segment.speaker == TranscriptSegment.Speaker.CALLER:
                caller_utterance_handle(
                    call=locked,
                    text=segment.text,
                    item_id=segment.item_id,
                    occurred_at=segment.occurred_at,
                    extra_phrases=phrases,
                    metadata=segment.metadata,
                )
            else:
                transcript_segments_append(call=locked, segments=[segment])
        return call_end(call=locked, reason=reason, intake=intake, ended_at=ended_at)


def caller_turn_lost(*, call: Call, item_id: str = "", position: int | None = None) -> bool:
    """OpenAI could not transcribe a caller's turn: leave a visible placeholder so staff see a turn was lost (no
    triage is possible). Idempotent per item; a transcript that still arrives for the item is stored beside it."""
    segment = transcript_segment_append(
        call=call,
        speaker=TranscriptSegment.Speaker.CALLER,
        text=LOST_TURN_TEXT,
        item_id=f"{item_id[:120]}:lost" if item_id else "",
        metadata={"transcription_failed": True},
        position=position,
    )
    return segment is not None


def agent_utterance_handle(
    *,
    call: Call,
    text: str,
    item_id: str = "",
    flag_uncertain: bool = True,
    position: int | None = None,
    heard_ms: int | None = None,
) -> Decision:
    """Store one of the agent's utterances; when it hedges ("I'm not sure", "no estoy seguro") and `flag_uncertain`
    (the transport flags at most one per call), raise an `uncertain` escalation for staff. `heard_ms`: the caller
    interrupted the line after that many milliseconds (the text is what was generated, not all of it was heard)."""
    text = text.strip()
    if not text:
        return NOTHING
    with transaction.atomic():
        segment = transcript_segment_append(
            call=call,
            speaker=TranscriptSegment.Speaker.AGENT,
            text=text,
            item_id=item_id,
            position=position,
            heard_ms=heard_ms,
        )
        if segment is None or not flag_uncertain or call.is_ended:
            return Decision(stored=segment is not None)
        assessment = assess_agent(text)
        if assessment is None:
            return Decision(stored=True)
        escalation, created = escalation_create(
            call=call,
            level=EscalationLevel.UNCERTAIN,
            source=Escalation.Source.KEYWORD,
            reason="agent_uncertain",
            evidence=", ".join(assessment.evidence),
        )
    return Decision(stored=True, escalation=escalation, created=created)


def agent_escalation_raise(*, call: Call, level: str, reason: str = "", statement: str = "") -> tuple[Decision, str]:
    """The model's own `escalate_call`: raise (or join) the escalation; returns the decision and the guidance the
    agent gets back as the tool's output."""
    level = EscalationLevel(level)
    with transaction.atomic():
        transfer_to = transfer_target(call, level)
        escalation, created = escalation_create(
            call=call,
            level=level,
            source=Escalation.Source.AGENT_TOOL,
            reason=reason[:300],
            evidence=statement[:2000],
        )
    guidance = escalation_guidance(call.organization, level)
    return Decision(
        stored=True, escalation=escalation, created=created, transfer_to=transfer_to if created else ""
    ), guidance
