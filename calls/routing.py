"""WebSocket routes of the calls app (the live escalation board lands here)."""

websocket_urlpatterns: list = []
