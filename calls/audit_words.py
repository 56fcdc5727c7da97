"""The audit trail in words: "Rita viewed the call of Robert Chen", each object a link to its page.

Rows hold ids only (calls.audit); this turns a page of them into sentences, looking names up in a few queries per
page (not per row), and only among the rows the reader may see: a call the reader cannot open keeps its id.
Names of callers are patient data, so the page that shows them records that it did (`named_calls`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, Q, QuerySet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from calls.models import AuditEvent, Call, Escalation, Intake
from organizations.access import scope_for_user

Action = AuditEvent.Action

VERBS: dict[str, str] = {
    Action.VIEW: "viewed",
    Action.LIST: "listed",
    Action.SEARCH: "searched",
    Action.EXPORT: "exported",
    Action.PUSH: "was shown on the live board",
    Action.CREATE: "created",
    Action.CHANGE: "changed",
    Action.DELETE: "deleted",
}
# What a row of each object type is called (singular, plural).
NOUNS = {
    "call": ("call", "calls"),
    "escalation": ("escalation", "escalations"),
    "intake": ("intake", "intakes"),
    "transcriptsegment": ("transcript line", "transcript lines"),
    "membership": ("team membership", "team memberships"),
    "user": ("user", "users"),
    "organization": ("clinic", "clinics"),
}
SERVICE_NAMES = {
    "twilio": "The phone line (Twilio)",
    "openai-sideband": "The voice agent",
    "web-caller": "A web caller",
    "retention": "Data retention",
    "system": "The system",
}


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def person_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def caller_words(call: Call) -> str:
    return call.caller_name or call.caller_phone or f"a {call.get_channel_display().lower()} caller"


@dataclass
class Names:
    """Names of what a page of events refers to, fetched once for the page."""

    users: dict[int, User] = field(default_factory=dict)
    calls: dict[uuid.UUID, Call] = field(default_factory=dict)
    escalations: dict[uuid.UUID, Escalation] = field(default_factory=dict)
    intakes: dict[int, Intake] = field(default_factory=dict)

    @property
    def named_calls(self) -> list[Call]:
        """Calls whose caller is named on the page (to be recorded as read)."""
        seen = dict(self.calls)
        for escalation in self.escalations.values():
            seen[escalation.call_id] = escalation.call
        for intake in self.intakes.values():
            seen[intake.call_id] = intake.call
        return list(seen.values())


def _visible[M: Model](queryset: QuerySet[M], reader: User | AnonymousUser, via: str = "organization") -> QuerySet[M]:
    return scope_for_user(queryset, reader, via=via)


def names_for(events: Sequence[AuditEvent], reader: User | AnonymousUser) -> Names:
    """Look up, in one query per kind, the people and objects `events` name, among those `reader` may see."""
    user_ids: set[int] = {event.actor_user_id for event in events if event.actor_user_id is not None}
    call_ids: set[uuid.UUID] = set()
    escalation_ids: set[uuid.UUID] = set()
    intake_ids: set[int] = set()
    for event in events:
        details = event.details or {}
        if event.object_type == "call" and (pk := _uuid(event.object_id)):
            call_ids.add(pk)
        elif event.object_type == "escalation" and (pk := _uuid(event.object_id)):
            escalation_ids.add(pk)
        elif event.object_type == "intake" and (number := _int(event.object_id)) is not None:
            intake_ids.add(number)
        elif event.object_type == "transcriptsegment" and (pk := _uuid(details.get("call_id"))):
            call_ids.add(pk)
        elif event.object_type in ("user", "membership"):
            number = _int(event.object_id if event.object_type == "user" else details.get("user_id"))
            if number is not None:
                user_ids.add(number)
    names = Names()
    if user_ids:
        names.users = {user.pk: user for user in User.objects.filter(pk__in=user_ids)}
    if call_ids:
        calls = _visible(Call.objects.filter(pk__in=call_ids), reader).only(
            "id", "caller_name", "caller_phone", "channel", "organization_id"
        )
        names.calls = {call.pk: call for call in calls}
    if escalation_ids:
        escalations = _visible(Escalation.objects.filter(pk__in=escalation_ids), reader).select_related("call")
        names.escalations = {escalation.pk: escalation for escalation in escalations}
    if intake_ids:
        intakes = _visible(Intake.objects.filter(pk__in=intake_ids), reader, via="call__organization")
        names.intakes = {intake.pk: intake for intake in intakes.select_related("call")}
    return names


def _link(obj: Model, text: str) -> SafeString:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def actor_words(event: AuditEvent, names: Names) -> str:
    if event.actor_user_id is not None:
        user = names.users.get(event.actor_user_id)
        return person_name(user) if user is not None else event.actor_username or f"user {event.actor_user_id}"
    return SERVICE_NAMES.get(event.actor_service, event.actor_service or "The system")


def _call_phrase(call: Call | None, fallback_id: Any) -> SafeString:
    if call is None:
        return format_html("a call ({})", fallback_id or "no longer stored")
    return format_html("the call of {}", _link(call, caller_words(call)))


def _object_words(event: AuditEvent, names: Names) -> SafeString:
    details = event.details or {}
    kind = event.object_type
    if not event.object_id:  # a list, a search, an export, a purge: how many
        count = len(event.object_ids or [])
        singular, plural = NOUNS.get(kind, (kind, kind))
        return format_html("{} {}", count, singular if count == 1 else plural)
    if kind == "call":
        return _call_phrase(names.calls.get(_uuid(event.object_id)), event.object_id)  # type: ignore[arg-type]
    if kind == "escalation":
        escalation = names.escalations.get(_uuid(event.object_id))  # type: ignore[arg-type]
        if escalation is None:
            return format_html("an escalation ({})", event.object_id)
        return format_html(
            "{} on {}",
            _link(escalation, f"the {escalation.get_level_display()} escalation"),
            _call_phrase(escalation.call, escalation.call_id),
        )
    if kind == "intake":
        intake = names.intakes.get(_int(event.object_id))  # type: ignore[arg-type]
        if intake is None:
            return format_html("an intake ({})", event.object_id)
        return format_html("the intake of {}", _call_phrase(intake.call, intake.call_id))
    if kind == "membership":
        member = names.users.get(_int(details.get("user_id")))  # type: ignore[arg-type]
        who = person_name(member) if member is not None else f"user {details.get('user_id', '?')}"
        return format_html("the team membership of {}", who)
    if kind == "user":
        user = names.users.get(_int(event.object_id))  # type: ignore[arg-type]
        return format_html("the access of {}", person_name(user) if user is not None else f"user {event.object_id}")
    singular, _plural = NOUNS.get(kind, (kind, kind))
    return format_html("{} {}", singular, event.object_id)


def event_sentence(event: AuditEvent, names: Names) -> SafeString:
    """One event as a sentence, e.g. "Rita Moreno viewed the call of Robert Chen."."""
    details = event.details or {}
    actor = actor_words(event, names)
    what = _object_words(event, names)
    if event.object_type == "transcriptsegment" and event.action == Action.CREATE:
        count = len(event.object_ids or [])
        call = names.calls.get(_uuid(details.get("call_id")))  # type: ignore[arg-type]
        lines = "line" if count == 1 else "lines"
        call_phrase = _call_phrase(call, details.get("call_id"))
        return format_html("{} added {} transcript {} to {}.", actor, count, lines, call_phrase)
    if event.object_type == "membership":
        membership_verbs: dict[str, str] = {
            Action.CREATE: "added",
            Action.CHANGE: "changed the role in",
            Action.DELETE: "removed",
        }
        verb = membership_verbs.get(event.action, VERBS.get(event.action, event.action))
        return format_html("{} {} {}.", actor, verb, what)
    if event.object_type == "user" and details.get("event") == "access_reset":
        return format_html("{} reset {}.", actor, what)
    if event.action == Action.PUSH:
        return format_html("{} {} ({}).", actor, VERBS[Action.PUSH], what)
    fields = details.get("fields") or []
    suffix = format_html(" ({})", ", ".join(str(name).replace("_", " ") for name in fields)) if fields else ""
    return format_html("{} {} {}{}.", actor, VERBS.get(event.action, event.action), what, suffix)


def call_history(call: Call) -> QuerySet[AuditEvent]:
    """Audit rows about one call: the call itself, its escalations, its intake and its transcript."""
    escalation_ids = [str(pk) for pk in Escalation.objects.filter(call=call).values_list("pk", flat=True)]
    intake_ids = [str(pk) for pk in Intake.objects.filter(call=call).values_list("pk", flat=True)]
    about = (
        Q(object_type="call", object_id=str(call.pk))
        | Q(object_type="escalation", object_id__in=escalation_ids)
        | Q(object_type="intake", object_id__in=intake_ids)
        | Q(object_type="transcriptsegment", details__call_id=str(call.pk))
    )
    return AuditEvent.objects.filter(about, organization_id=call.organization_id)


def object_history(obj: Model) -> QuerySet[AuditEvent]:
    if isinstance(obj, Call):
        return call_history(obj)
    return AuditEvent.objects.filter(object_type=obj._meta.model_name, object_id=str(obj.pk))


def changes_only(events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    return events.filter(action__in=[Action.CREATE, Action.CHANGE, Action.DELETE])
