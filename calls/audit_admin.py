"""The console's audit trail: clinic admins browse who read or changed their clinic's patient data. Read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse

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
    list_display = ["at", "actor", "action", "object_type", "object_ref", "via", "ip", "request_id"]
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

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._absent(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

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
