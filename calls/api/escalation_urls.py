"""Staff escalation endpoints; every path answers with and without a trailing slash."""

from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import URLPattern, path

from calls.api import escalations as views


def optional_slash(route: str, view: Callable[..., HttpResponseBase], name: str) -> list[URLPattern]:
    return [path(route, view, name=name), path(f"{route}/", view, name=f"{name}-slash")]


urlpatterns = [
    *optional_slash("calls/<uuid:call_id>/escalate", views.CallEscalateView.as_view(), "call-escalate"),
    *optional_slash("calls/<uuid:call_id>/deescalate", views.CallDeescalateView.as_view(), "call-deescalate"),
    *optional_slash("escalations", views.EscalationListView.as_view(), "escalation-list"),
    *optional_slash(
        "escalations/<uuid:escalation_id>/acknowledge", views.EscalationAcknowledgeView.as_view(), "escalation-ack"
    ),
    *optional_slash(
        "escalations/<uuid:escalation_id>/resolve", views.EscalationResolveView.as_view(), "escalation-resolve"
    ),
]
