"""The console's audit trail: clinic admins browse who read or changed their clinic's patient data. Read-only.

Rows read as sentences with names ("Rita viewed the call of Robert Chen", calls.audit_words); the row's time opens
the raw row (every id it holds)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.safestring import SafeString

from calls.audit import AuditUnavailable, audit_read, audit_unavailable_response
from calls.audit_words import Names, event_sentence, names_for
from calls.models import AuditEvent
from organizations.access import admin_organizations_for_user
from organizations.models import Organization


def _audit_organizations(request: HttpRequest) -> QuerySet[Organization]:
    return admin_organizations_for_user(request.user)


class ClinicFilter(admin.SimpleListFilter):
    title = "clinic"
    parameter_name = "clinic"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        organizations = _audit_organizations(request).order_by("name").values_list("id", "name")
        return [(str(pk), name) for pk, name in organizations]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value()
        if value and value in {key for key, _label in self.lookup_choices}:
            return queryset.filter(organization_id=value)
        return queryset


class ActorFilter(admin.SimpleListFilter):
    """People and service principals seen in the visible trail (usernames are snapshots at the time)."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        queryset = model_admin.get_queryset(request)
        users = queryset.exclude(actor_user_id=None).values_list("actor_username", flat=True).distinct()
        services = queryset.filter(actor_user_id=None).values_list("actor_service", flat=True).distinct()
        return [(f"user:{name}", name) for name in sorted(set(users))[:100]] + [
            (f"service:{name}", f"{name} (service)") for name in sorted(set(services))
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value() or ""
        kind, _sep, name = value.partition(":")
        if kind == "user":
            return queryset.filter(actor_user_id__isnull=False, actor_username=name)
        if kind == "service":
            return queryset.filter(actor_user_id=None, actor_service=name)
        return queryset


# Every column of a row, all read-only.
COLUMNS = (
    "what",
    "at",
    "action",
    "actor_user_id",
    "actor_username",
    "actor_service",
    "organization_id",
    "object_type",
    "object_id",
    "object_ids",
    "ip",
    "request_id",
    "via",
    "details",
)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = ["at", "what", "via", "ip"]
    list_display_links = ["at"]
    list_filter = ["action", ("at", admin.DateFieldListFilter), ActorFilter, "object_type", "via", ClinicFilter]
    search_fields = ["=object_id", "=request_id", "actor_username"]
    search_help_text = "Search by object id, request id or username."
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    show_full_result_count = False  # the trail only grows
    list_per_page = 100
    actions = None  # no bulk delete, not even for operators
    fields = COLUMNS
    readonly_fields = COLUMNS

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is None:
            return response
        # One lookup of the names for the whole page; the sentences are kept on the rows the page renders.
        events = list(changelist.result_list)
        return self._with_sentences(request, events, response)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._absent(request, object_id)
        response = super().change_view(request, object_id, form_url, extra_context)
        original = (getattr(response, "context_data", None) or {}).get("original")
        return self._with_sentences(request, [original], response) if original is not None else response

    def _with_sentences(self, request: HttpRequest, events: list[AuditEvent], response: HttpResponse) -> HttpResponse:
        names = names_for(events, request.user)
        for event in events:
            event._sentence = event_sentence(event, names)  # type: ignore[attr-defined]
        named = names.named_calls
        if named:
            # The sentences name callers: patient data shown, so recorded like any other read.
            try:
                audit_read(request, action=AuditEvent.Action.LIST, objects=named, via="console", object_type="call")
            except AuditUnavailable:
                return audit_unavailable_response()
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # Clinic admins only, and only their clinics' rows: staff do not review colleagues' access.
        return queryset.filter(organization_id__in=_audit_organizations(request).values("id"))

    def _absent(self, request: HttpRequest, object_id: str) -> None:
        # Another clinic's row must look simply absent (404), before Django's permission checks would say 403 or
        # redirect to the index.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("No audit event matches the given id.")

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._absent(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._absent(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return user.is_superuser or _audit_organizations(request).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    @admin.display(description="What happened")
    def what(self, obj: AuditEvent) -> SafeString:
        sentence = getattr(obj, "_sentence", None)
        return sentence if sentence is not None else event_sentence(obj, Names())

    @admin.display(description="Actor", ordering="actor_username")
    def actor(self, obj: AuditEvent) -> str:
        if obj.actor_user_id is not None:
            return f"{obj.actor_username} (user {obj.actor_user_id})"
        return f"{obj.actor_service} (service)"

    @admin.display(description="Object")
    def object_ref(self, obj: AuditEvent) -> str:
        if obj.object_id:
            return obj.object_id
        count = len(obj.object_ids or [])
        return f"{count} row(s)"
