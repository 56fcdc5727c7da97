"""WebSocket routes of the realtime app (the Twilio media bridge lands here)."""

websocket_urlpatterns: list = []
