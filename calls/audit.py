"""The audit trail: who read or changed which patient data, when, from where (HIPAA 164.312(b)).

Reads are recorded where they happen, before any data leaves (fail closed: if the audit row cannot be written the
reader gets 503 `audit_unavailable` and no data):

    audit_read(request, action=AuditEvent.Action.VIEW, objects=[call], via="api")      # API / console views
    AuditedAdminMixin                                                               # console change/changelist
    board_push_audited(scope, items)                                                # live board pushes

Changes are recorded by the service that makes them, inside its own transaction (the change and its row commit or
roll back together; no signals, nothing implicit):

    locked.save(update_fields=["status", "ended_at"])
    audit_change(locked, action=Action.CHANGE, fields=["status", "ended_at"])
    audit_segments_created(segments)                                                # one row per call

Who acts is named once, by the layer that knows it, never guessed from a URL:

    audit_request_actor(request, via="api")                         # staff API, console: the request's user
    audit_request_actor(request, service="twilio", via="telephony")  # Twilio webhooks, caller-side API ("web-caller")
    with audit_actor("openai-sideband"): ...                        # service principals outside a request
    audit_actor_for_task("twilio")                                  # a media stream's task

`AuditContextMiddleware` makes the current request (user, IP, request id) known to the rows written while it runs.

Rows hold ids, action names and field names only, never values. The application cannot change or delete them
(AuditEvent refuses, and on PostgreSQL a trigger refuses for every client). Deployment: grant the app's database
role only INSERT and SELECT on `calls_auditevent` (plus USAGE on its id sequence), so even a compromised app
process cannot rewrite the trail:

    REVOKE UPDATE, DELETE, TRUNCATE ON calls_auditevent FROM voiceagent_app;
    GRANT INSERT, SELECT ON calls_auditevent TO voiceagent_app;
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calls.models import AuditEvent, TranscriptSegment
from core.errors import ServiceUnavailable, database_unavailable
from core.middleware import SyncAsyncMiddleware
from core.net import client_ip, valid_ip
from core.observability import request_id_var

if TYPE_CHECKING:
    from organizations.admin import ClinicScopedAdmin

    # The console admins AuditedAdminMixin is mixed into; at run time it is a plain mixin.
    _ConsoleAdmin = ClinicScopedAdmin[Any]
else:
    _ConsoleAdmin = object

logger = logging.getLogger(__name__)

Action = AuditEvent.Action

# Named service principals (every row has a user id or one of these) and the entry point each acts through by
# default.
PRINCIPAL_VIA = {
    "twilio": "telephony",
    "openai-sideband": "pipeline",
    "openai": "webhook",  # OpenAI's signed webhooks (a SIP call coming in)
    "web-caller": "api",
    "retention": "command",
    "openai-summary": "command",  # the notification worker making post-call summaries (calls.summaries)
    "system": "system",
}
SERVICE_PRINCIPALS = frozenset(PRINCIPAL_VIA)


@dataclass(frozen=True)
class AuditActor:
    """Who acts, a staff user or a named service principal, and through which entry point (`via`: api, console,
    telephony, pipeline, board, command, system)."""

    user: User | AnonymousUser | None = None
    service: str = ""
    via: str = "system"

    @classmethod
    def principal(cls, service: str, via: str | None = None) -> AuditActor:
        if service not in SERVICE_PRINCIPALS:
            raise ValueError(f"unknown service principal {service!r}")
        return cls(service=service, via=via or PRINCIPAL_VIA[service])


SYSTEM_ACTOR = AuditActor(service="system", via="system")
_REQUEST_ACTOR_ATTR = "_audit_actor"  # on the Django request: the actor its view named

_request_var: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)
_actor_var: contextvars.ContextVar[AuditActor | None] = contextvars.ContextVar("audit_actor", default=None)


class AuditUnavailable(ServiceUnavailable):
    """The audit row could not be written, so the data is not returned. A domain error: the API answers it as 503
    `audit_unavailable` with Retry-After (core.errors), the console with `audit_unavailable_response`."""

    code = "audit_unavailable"
    message = "Patient data cannot be shown right now; try again shortly."


# --- Who is acting -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def audit_actor(service: str, *, via: str | None = None) -> Iterator[None]:
    """Record changes inside the block as made by a service principal (e.g. "openai-sideband", "retention")."""
    token = _actor_var.set(AuditActor.principal(service, via))
    try:
        yield
    finally:
        _actor_var.reset(token)


def audit_actor_for_task(service: str, *, via: str = "pipeline") -> None:
    """Like audit_actor, for a long-lived asyncio task (a media stream, which feeds the call event pipeline): every
    change the task and the tasks and threads it starts make from now on is recorded as `service`. The task's
    context ends with the task."""
    _actor_var.set(AuditActor.principal(service, via))


def audit_request_actor(request: HttpRequest, *, via: str, service: str | None = None) -> None:
    """Name who acts for the rest of `request` (a Django or DRF request): the service principal `service`, or else
    the request's authenticated user. The view layer calls it once it knows (after authentication)."""
    if service is not None:
        actor = AuditActor.principal(service, via)
    else:
        user = getattr(request, "user", None)  # DRF: the user it authenticated (token or session)
        authenticated = user is not None and user.is_authenticated
        actor = AuditActor(user=user, via=via) if authenticated else AuditActor(service="system", via=via)
    setattr(getattr(request, "_request", request), _REQUEST_ACTOR_ATTR, actor)


def _current_actor(request: HttpRequest | None) -> AuditActor:
    """The innermost named actor: a service block or task, else the one the request's view named, else the
    request's user (reads name their `via` themselves), else the system."""
    actor = _actor_var.get()
    if actor is not None:
        return actor
    if request is not None:
        named = getattr(request, _REQUEST_ACTOR_ATTR, None)
        if named is not None:
            return named
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return AuditActor(user=user, via="")
    return SYSTEM_ACTOR


def _actor_fields(actor: AuditActor) -> dict[str, Any]:
    user = actor.user
    if user is not None and user.is_authenticated:
        return {"actor_user_id": user.pk, "actor_username": user.get_username()[:150], "actor_service": ""}
    return {"actor_user_id": None, "actor_username": "", "actor_service": actor.service or "system"}


def build_event(
    *,
    action: str,
    object_type: str,
    organization_id: Any,
    object_id: Any = "",
    object_ids: Iterable[Any] = (),
    user: User | AnonymousUser | None = None,
    service: str | None = None,
    request: HttpRequest | None = None,
    ip: str | None = None,
    via: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    request = request if request is not None else _request_var.get()
    if service is not None:
        actor = AuditActor.principal(service)
    elif user is not None:
        actor = AuditActor(user=user)
    else:
        actor = _current_actor(request)
    request_id = request_id_var.get()
    return AuditEvent(
        at=timezone.now(),
        action=action,
        organization_id=organization_id,
        object_type=object_type,
        object_id=str(object_id) if object_id else "",
        object_ids=[str(value) for value in object_ids],
        ip=ip if ip is not None else (client_ip(request) if request is not None else None),
        request_id="" if request_id == "-" else request_id[:64],
        via=via or actor.via,
        details=details or {},
        **_actor_fields(actor),
    )


def write_events(events: list[AuditEvent]) -> None:
    """Write the rows or raise AuditUnavailable (a change's transaction then rolls back with it)."""
    if not events:
        return
    try:
        # No savepoint: reads run outside transactions (the extra round trips would cost every read), and a change
        # whose row fails is abandoned with its whole transaction.
        AuditEvent.objects.bulk_create(events)
    except DatabaseError as exc:
        if database_unavailable(exc):
            raise  # the whole database is gone (a restart, a failover): 503 database_unavailable, like any query
        logger.error("audit write failed (%s); refusing the read or change", type(exc).__name__)
        raise AuditUnavailable() from exc


def audit_record(**kwargs: Any) -> AuditEvent:
    """Write one audit row (see `build_event` for the arguments); raises AuditUnavailable when it cannot."""
    event = build_event(**kwargs)
    write_events([event])
    return event


# --- Reads ---------------------------------------------------------------------------------------------------------


def _organization_of(obj: Model) -> Any:
    if hasattr(obj, "organization_id"):
        return obj.organization_id
    call = getattr(obj, "call", None)
    return getattr(call, "organization_id", None)


def object_type_of(obj: Model | type[Model]) -> str:
    return cast(str, obj._meta.model_name)  # None only for an Options without a model


def audit_read(
    request: HttpRequest,
    *,
    action: str,
    objects: Iterable[Model],
    via: str,
    object_type: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record that `request`'s user read `objects` (one row per clinic; lists name every id shown).

    Call it before serialising or rendering; it raises AuditUnavailable when the row cannot be written, so the
    caller returns no data. An empty list is recorded too (the search itself is an access)."""
    request = getattr(request, "_request", request)  # a DRF Request wraps the Django one
    items = list(objects)
    by_org: dict[Any, list[Model]] = defaultdict(list)
    for obj in items:
        by_org[_organization_of(obj)].append(obj)
    model_type = object_type or (object_type_of(items[0]) if items else "call")
    single = action == Action.VIEW and len(items) == 1
    events = [
        build_event(
            action=action,
            object_type=model_type,
            organization_id=organization_id,
            object_id=rows[0].pk if single else "",
            object_ids=[] if single else [row.pk for row in rows],
            request=request,
            via=via,
            details=details,
        )
        for organization_id, rows in (by_org.items() if items else [(None, [])])
    ]
    write_events(events)


def audit_push(
    *,
    user: User,
    escalation_ids_by_org: dict[Any, list[Any]],
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record a live-board push (snapshot or one escalation) to `user`'s socket, one row per clinic; raises
    AuditUnavailable."""
    events = []
    for organization_id, escalation_ids in escalation_ids_by_org.items():
        ids = [str(value) for value in escalation_ids]
        events.append(
            build_event(
                action=Action.PUSH,
                object_type="escalation",
                organization_id=organization_id,
                object_id=ids[0] if len(ids) == 1 else "",
                object_ids=ids if len(ids) != 1 else [],
                user=user,
                ip=valid_ip(ip),
                via="board",
                details=details,
            )
        )
    write_events(events)


def audit_sign_in(request: HttpRequest, *, user: User, organization_ids: Iterable[Any], via: str) -> None:
    """Record that `user` signed in for an API token, one row per clinic of theirs (each clinic's trail shows its
    people's sign-ins; an operator's row names no clinic). Ids only, never the token; raises AuditUnavailable."""
    request = getattr(request, "_request", request)
    ids = list(organization_ids) or [None]
    events = [
        build_event(
            action=Action.CREATE,
            object_type="apitoken",
            organization_id=organization_id,
            object_id=user.pk,
            user=user,
            request=request,
            via=via,
            details={"event": "sign_in"},
        )
        for organization_id in ids
    ]
    write_events(events)


def audit_unavailable_response() -> HttpResponse:
    """What the console answers when the audit row cannot be written: no data."""
    return HttpResponse(
        "Patient data cannot be shown right now because the access could not be recorded. Try again shortly.",
        status=503,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


class AuditedAdminMixin(_ConsoleAdmin):
    """Console pages of patient data (with organizations.admin.ClinicScopedAdmin): the changelist (list or search)
    and the change page (view) are recorded before the page renders, and a failed audit write answers 503 without
    the page. Every entry point names the console user as the actor of what it changes (forms, actions, workflow
    buttons, deletes), and the changes themselves are recorded by the services they call."""

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        audit_request_actor(request, via="console")  # bulk actions run from here
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            action = Action.SEARCH if changelist.query else Action.LIST
            try:
                audit_read(
                    request,
                    action=action,
                    objects=changelist.result_list,
                    via="console",
                    object_type=self.opts.model_name,
                )
            except AuditUnavailable:
                return audit_unavailable_response()
        return response

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        audit_request_actor(request, via="console")  # the add and change forms (save_model)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        original = (getattr(response, "context_data", None) or {}).get("original")
        if original is not None and request.method == "GET":
            try:
                audit_read(request, action=Action.VIEW, objects=[original], via="console")
            except AuditUnavailable:
                return audit_unavailable_response()
        return response

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        audit_request_actor(request, via="console")  # delete_model calls a service that records the delete
        return super().delete_view(request, object_id, extra_context)

    def object_button_view(self, request: HttpRequest, object_id: str, button: str) -> HttpResponse:
        audit_request_actor(request, via="console")  # ClinicScopedAdmin's workflow buttons (acknowledge, ...)
        return super().object_button_view(request, object_id, button)


# --- Changes (every path) --------------------------------------------------------------------------------------------


def audit_change(instance: Model, *, action: str, fields: Iterable[str] = ()) -> AuditEvent:
    """Record that a patient-data row (Call, Intake, Escalation) was created or changed, naming the changed fields
    (never their values). Call it inside the change's transaction: when the row cannot be written it raises
    AuditUnavailable, and the change rolls back with it."""
    if action not in (Action.CREATE, Action.CHANGE):
        raise ValueError(f"audit_change records creates and changes, not {action!r}")
    names = sorted(set(fields))
    return audit_record(
        action=action,
        object_type=object_type_of(instance),
        organization_id=_organization_of(instance),
        object_id=instance.pk,
        details={"fields": names} if names else {},
    )


def audit_team_change(
    *,
    actor: User,
    organization_id: Any,
    action: str,
    object_type: str,
    object_id: Any,
    details: dict[str, Any],
    via: str,
) -> None:
    """The recorder of team changes (organizations.services.team_*, installed by calls.apps): who added, removed or
    changed the role of a member, or reset their access. Ids only; raises AuditUnavailable like audit_change."""
    if action not in (Action.CREATE, Action.CHANGE, Action.DELETE):
        raise ValueError(f"team changes are creates, changes or deletes, not {action!r}")
    audit_record(
        action=action,
        object_type=object_type,
        organization_id=organization_id,
        object_id=object_id,
        user=actor,
        via=via,
        details=details,
    )


def audit_segments_created(segments: list[TranscriptSegment]) -> None:
    """Record newly stored transcript segments: one row per call naming the new segments (inside the insert's
    transaction, like audit_change)."""
    by_call: dict[Any, list[TranscriptSegment]] = defaultdict(list)
    for segment in segments:
        by_call[segment.call_id].append(segment)
    write_events(
        [
            build_event(
                action=Action.CREATE,
                object_type="transcriptsegment",
                organization_id=_organization_of(rows[0]),
                object_ids=[row.pk for row in rows if row.pk is not None],
                details={"call_id": str(call_id), "seqs": [row.seq for row in rows]},
            )
            for call_id, rows in by_call.items()
        ]
    )


# --- Request context -----------------------------------------------------------------------------------------------


class AuditContextMiddleware(SyncAsyncMiddleware):
    """Makes the current request (user, IP, request id, and the actor its view names) known to the audit rows
    written while it runs. Sits after AuthenticationMiddleware; DRF's token users are picked up when a row is
    written. It never decides who acts: the view layer does (audit_request_actor)."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        token = _request_var.set(request)
        try:
            return self.get_response(request)
        finally:
            _request_var.reset(token)

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        token = _request_var.set(request)
        try:
            return await self.get_response(request)
        finally:
            _request_var.reset(token)


# The patient data a board item carries (calls.board_view.escalation_details), named in its audit rows.
BOARD_DETAIL_FIELDS = ("caller_name", "caller_phone", "trigger")


def board_push_audited(scope: dict[str, Any], items: list[dict[str, Any]], *, event: str = "") -> bool:
    """For the board consumer: record a push of board `items` (board_item dicts) to the socket's user. False when
    the row cannot be written, and then the push must not be sent (fail closed)."""
    if not items:
        return True  # nothing about anyone was sent
    client = scope.get("client") or (None,)
    details: dict[str, Any] = {"fields": list(BOARD_DETAIL_FIELDS)}  # what of the patient's data was sent
    if event:
        details["event"] = event
    try:
        audit_push(
            user=scope["user"],
            escalation_ids_by_org=_ids_by_org(items),
            ip=client[0],
            details=details,
        )
    except AuditUnavailable:
        return False
    return True


def board_page_refusal(request: HttpRequest, items: list[dict[str, Any]]) -> HttpResponse | None:
    """For the board page: record its snapshot; a 503 response to return instead when that fails."""
    if not items:
        return None
    try:
        write_events(
            [
                build_event(
                    action=Action.LIST,
                    object_type="escalation",
                    organization_id=organization_id,
                    object_ids=ids,
                    request=request,
                    via="board",
                    details={"fields": list(BOARD_DETAIL_FIELDS)},
                )
                for organization_id, ids in _ids_by_org(items).items()
            ]
        )
    except AuditUnavailable:
        return audit_unavailable_response()
    return None


def _ids_by_org(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    by_org: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_org[item["organization_id"]].append(item["id"])
    return by_org
