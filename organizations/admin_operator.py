"""Operator-only console models (users, groups, API tokens): clinic users get a plain 404 for any object page.

Django's own views look the object up before checking permissions, so an existing id answered 403 and a missing
one redirected to the index: a clinic admin could tell which user ids exist. Operators (superusers) manage these.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import Http404, HttpRequest
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy


class OperatorOnlyObjectPages:
    def _operator_only(self, request: HttpRequest) -> None:
        if not request.user.is_superuser:
            raise Http404

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._operator_only(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._operator_only(request)
        return super().history_view(request, object_id, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._operator_only(request)
        return super().delete_view(request, object_id, extra_context)


class OperatorUserAdmin(OperatorOnlyObjectPages, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        self._operator_only(request)
        return super().user_change_password(request, id, form_url)


class OperatorGroupAdmin(OperatorOnlyObjectPages, GroupAdmin):
    pass


class OperatorTokenAdmin(OperatorOnlyObjectPages, TokenAdmin):
    pass


for model, model_admin in ((User, OperatorUserAdmin), (Group, OperatorGroupAdmin), (TokenProxy, OperatorTokenAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
