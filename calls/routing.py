"""WebSocket routes of the calls app: the live escalation board."""

from django.urls import path

from calls.consumers import EscalationBoardConsumer

websocket_urlpatterns: list = [
    path("ws/board/", EscalationBoardConsumer.as_asgi()),
]
