"""Caller-side realtime API routes (trailing slash optional, like the rest of the API)."""

from django.urls import re_path

from realtime.views import CallEventsView, RealtimeAttachView, RealtimeSessionView

UUID = r"(?P<call_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"

urlpatterns = [
    re_path(r"^realtime/session/?$", RealtimeSessionView.as_view(), name="realtime-session"),
    re_path(rf"^calls/{UUID}/realtime/?$", RealtimeAttachView.as_view(), name="realtime-attach"),
    re_path(rf"^calls/{UUID}/events/?$", CallEventsView.as_view(), name="call-events"),
]
