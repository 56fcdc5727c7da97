"""The audit trail: who read or changed which patient data, when, from where (HIPAA 164.312(b)).

Reads are recorded where they happen, before any data leaves (fail closed: if the audit row cannot be written the
reader gets 503 `audit_unavailable` and no data):

    audit_read(request, action=AuditEvent.Action.VIEW, objects=[call], via="api")      # API / console views
    AuditedAdminMixin                                                               # console change/changelist
    board_push_audited(scope, items)                                                # live board pushes

Changes are recorded for every path (API, console, pipeline, telephony, shell) by `post_save` receivers on the
patient-data models and by `TranscriptSegment.objects.bulk_create`; the actor comes from the current request
(`AuditContextMiddleware`) or a named service principal:

    with audit_actor("openai-sideband"):
        transcript_segment_append(...)

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
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError
from django.db.models import Model
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calls.models import AuditEvent, Call, Escalation, Intake, TranscriptSegment
from core.errors import ServiceUnavailable
from core.middleware import SyncAsyncMiddleware
from core.net import client_ip, valid_ip
from core.observability import request_id_var

logger = logging.getLogger(__name__)

Action = AuditEvent.Action

# Named service principals: every row has a user id or one of these.
SERVICE_PRINCIPALS = frozenset({"twilio", "openai-sideband", "web-caller", "retention", "system"})

_request_var: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)
_service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_service", default=None)
_suppress_var: contextvars.ContextVar[bool] = contextvars.ContextVar("audit_suppress", default=False)


class AuditUnavailable(ServiceUnavailable):
    """The audit row could not be written, so the data is not returned. A domain error: the API answers it as 503
    `audit_unavailable` with Retry-After (core.errors), the console with `audit_unavailable_response`."""

    code = "audit_unavailable"
    message = "Patient data cannot be shown right now; try again shortly."


# --- Who is acting -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def audit_actor(service: str) -> Iterator[None]:
    """Record changes inside the block as made by a service principal (e.g. "openai-sideband", "twilio")."""
    if service not in SERVICE_PRINCIPALS:
        raise ValueError(f"unknown service principal {service!r}")
    token = _service_var.set(service)
    try:
        yield
    finally:
        _service_var.reset(token)


def audit_actor_for_task(service: str) -> None:
    """Like audit_actor, for a long-lived asyncio task (a media stream): every change the task and the tasks and
    threads it starts make from now on is recorded as `service`. The task's context ends with the task."""
    if service not in SERVICE_PRINCIPALS:
        raise ValueError(f"unknown service principal {service!r}")
    _service_var.set(service)


@contextlib.contextmanager
def audit_suppressed() -> Iterator[None]:
    """For bulk jobs that record their own summary rows (retention purge): no per-row change events."""
    token = _suppress_var.set(True)
    try:
        yield
    finally:
        _suppress_var.reset(token)


def _path_principal(request: HttpRequest) -> str:
    if request.path.startswith("/twilio/"):
        return "twilio"
    if request.headers.get("X-Org-Key"):
        return "web-caller"
    return "system"


def _actor_fields(
    *, user: AbstractBaseUser | AnonymousUser | None, service: str | None, request: HttpRequest | None
) -> dict[str, Any]:
    service = service or _service_var.get()
    if service is None and user is None and request is not None:
        # DRF copies the user it authenticated (token or session) onto the Django request.
        user = getattr(request, "user", None)
    if service is None and user is not None and user.is_authenticated:
        return {"actor_user_id": user.pk, "actor_username": user.get_username()[:150], "actor_service": ""}
    if service is None:
        service = _path_principal(request) if request is not None else "system"
    return {"actor_user_id": None, "actor_username": "", "actor_service": service}


def build_event(
    *,
    action: str,
    object_type: str,
    organization_id: Any,
    object_id: Any = "",
    object_ids: Iterable[Any] = (),
    user: AbstractBaseUser | AnonymousUser | None = None,
    service: str | None = None,
    request: HttpRequest | None = None,
    ip: str | None = None,
    via: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    request = request if request is not None else _request_var.get()
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
        via=via,
        details=details or {},
        **_actor_fields(user=user, service=service, request=request),
    )


def write_events(events: list[AuditEvent]) -> None:
    """Write the rows or raise AuditUnavailable."""
    if not events:
        return
    try:
        # No savepoint: reads run outside transactions, and the extra round trips would cost every read.
        AuditEvent.objects.bulk_create(events)
    except DatabaseError as exc:
        logger.error("audit write failed (%s); refusing the read", type(exc).__name__)
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
    return obj._meta.model_name


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
    user: AbstractBaseUser,
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


def audit_unavailable_response() -> HttpResponse:
    """What the console answers when the audit row cannot be written: no data."""
    return HttpResponse(
        "Patient data cannot be shown right now because the access could not be recorded. Try again shortly.",
        status=503,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


class AuditedAdminMixin:
    """Console pages of patient data: the changelist (list or search), the change page (view) and deletes are
    recorded before the page renders; a failed audit write answers 503 without the page."""

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
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

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        pk, organization_id = obj.pk, _organization_of(obj)
        super().delete_model(request, obj)
        audit_record(
            action=Action.DELETE,
            object_type=object_type_of(obj),
            organization_id=organization_id,
            object_id=pk,
            request=request,
            via="console",
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        rows = [(row.pk, _organization_of(row)) for row in queryset]
        super().delete_queryset(request, queryset)
        by_org: dict[Any, list[Any]] = defaultdict(list)
        for pk, organization_id in rows:
            by_org[organization_id].append(pk)
        write_events(
            [
                build_event(
                    action=Action.DELETE,
                    object_type=self.opts.model_name,
                    organization_id=organization_id,
                    object_ids=pks,
                    request=request,
                    via="console",
                )
                for organization_id, pks in by_org.items()
            ]
        )


# --- Changes (every path) --------------------------------------------------------------------------------------------


def _via() -> str:
    if _service_var.get() is not None:
        return "pipeline"
    request = _request_var.get()
    if request is None:
        return "system"
    if request.path.startswith("/admin/"):
        return "console"
    if request.path.startswith("/twilio/"):
        return "telephony"
    return "api"


def _record_change(sender: type[Model], instance: Model, created: bool, **kwargs: Any) -> None:
    if _suppress_var.get() or kwargs.get("raw"):
        return
    update_fields = kwargs.get("update_fields")
    details = {"fields": sorted(update_fields)} if update_fields else {}
    event = build_event(
        action=Action.CREATE if created else Action.CHANGE,
        object_type=object_type_of(instance),
        organization_id=_organization_of(instance),
        object_id=instance.pk,
        via=_via(),
        details=details,
    )
    # Inside the change's own transaction: the change and its audit row commit or roll back together.
    event.save()


def record_segments_created(segments: list[TranscriptSegment]) -> None:
    """TranscriptSegment.objects.bulk_create sends no post_save; one row per call names the new segments."""
    if _suppress_var.get() or not segments:
        return
    by_call: dict[Any, list[TranscriptSegment]] = defaultdict(list)
    for segment in segments:
        by_call[segment.call_id].append(segment)
    AuditEvent.objects.bulk_create(
        [
            build_event(
                action=Action.CREATE,
                object_type="transcriptsegment",
                organization_id=_organization_of(rows[0]),
                object_ids=[row.pk for row in rows if row.pk is not None],
                via=_via(),
                details={"call_id": str(call_id), "seqs": [row.seq for row in rows]},
            )
            for call_id, rows in by_call.items()
        ]
    )


AUDITED_MODELS: tuple[type[Model], ...] = (Call, Intake, Escalation, TranscriptSegment)


def connect_signals() -> None:
    for model in AUDITED_MODELS:
        post_save.connect(_record_change, sender=model, dispatch_uid=f"audit_{model._meta.model_name}")


# --- Request context -----------------------------------------------------------------------------------------------


class AuditContextMiddleware(SyncAsyncMiddleware):
    """Makes the current request (user, IP, path) known to the audit receivers of this request's changes.
    Sits after AuthenticationMiddleware; DRF's token users are picked up when the row is written."""

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


def board_push_audited(scope: dict[str, Any], items: list[dict[str, Any]], *, event: str = "") -> bool:
    """For the board consumer: record a push of board `items` (board_item dicts) to the socket's user. False when
    the row cannot be written, and then the push must not be sent (fail closed)."""
    if not items:
        return True  # nothing about anyone was sent
    client = scope.get("client") or (None,)
    try:
        audit_push(
            user=scope["user"],
            escalation_ids_by_org=_ids_by_org(items),
            ip=client[0],
            details={"event": event} if event else None,
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
