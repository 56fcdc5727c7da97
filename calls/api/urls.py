"""Call endpoints; every path answers with and without a trailing slash."""

from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import URLPattern, path

from calls.api import views
from calls.api.auth_token import ApiTokenView


def optional_slash(route: str, view: Callable[..., HttpResponseBase], name: str) -> list[URLPattern]:
    return [path(route, view, name=name), path(f"{route}/", view, name=f"{name}-slash")]


urlpatterns = [
    *optional_slash("auth/token", ApiTokenView.as_view(), "auth-token"),
    *optional_slash("call/start", views.CallStartView.as_view(), "call-start"),
    *optional_slash("call/end", views.CallEndView.as_view(), "call-end"),
    *optional_slash("calls", views.CallListView.as_view(), "call-list"),
    *optional_slash("calls/<uuid:call_id>", views.CallDetailView.as_view(), "call-detail"),
    *optional_slash("calls/<uuid:call_id>/transcript", views.CallerTranscriptView.as_view(), "call-transcript"),
]
