"""Operator-only console models (users, groups, API tokens): clinic users get a plain 404 for any object page.

Django's own views look the object up before checking permissions, so an existing id answered 403 and a missing
one redirected to the index: a clinic admin could tell which user ids exist. Operators (superusers) manage these.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from organizations.forms import ConsolePasswordChangeForm, OperatorSetPasswordForm


class OperatorOnlyObjectPages[M: Model](admin.ModelAdmin[M]):
    """Mixed in before the model's own ModelAdmin (which the super() calls reach)."""

    def _operator_only(self, request: HttpRequest) -> None:
        if not request.user.is_superuser:
            raise Http404

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._operator_only(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._operator_only(request)
        return super().history_view(request, object_id, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._operator_only(request)
        return super().delete_view(request, object_id, extra_context)


class OperatorUserAdmin(OperatorOnlyObjectPages[User], UserAdmin[User]):
    change_password_form = OperatorSetPasswordForm  # also revokes the user's API tokens

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        self._operator_only(request)
        return super().user_change_password(request, id, form_url)


class OperatorGroupAdmin(OperatorOnlyObjectPages[Group], GroupAdmin):
    pass


class OperatorTokenAdmin(OperatorOnlyObjectPages[TokenProxy], TokenAdmin):
    pass


def _register_for_operators[M: Model](model: type[M], model_admin: type[admin.ModelAdmin[M]]) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


# Changing one's own password in the console goes through the same service (tokens revoked, other sessions end).
admin.site.password_change_form = ConsolePasswordChangeForm
_register_for_operators(User, OperatorUserAdmin)
_register_for_operators(Group, OperatorGroupAdmin)
_register_for_operators(TokenProxy, OperatorTokenAdmin)
