"""WebSocket routes of the realtime app: the Twilio media bridge.

Twilio's Media Streams upgrade carries no Origin header and no session cookie; it is authenticated by its
X-Twilio-Signature (checked in the consumer) and a one-time stream token. `with_twilio_media` therefore routes
/twilio/media before the origin validator and auth middleware that guard the browser sockets (the validator would
refuse an Origin-less upgrade, and session lookups are wasted work on the phone path).
"""

from django.urls import path

from realtime.consumers import TwilioMediaConsumer
from realtime.telephony import MEDIA_PATH

twilio_media_app = TwilioMediaConsumer.as_asgi()

websocket_urlpatterns: list = [
    path(MEDIA_PATH.lstrip("/"), twilio_media_app, name="twilio-media"),
]


def with_twilio_media(protected_app):
    """ASGI app: /twilio/media straight to the bridge, every other socket through `protected_app`."""

    async def app(scope, receive, send):
        if scope["path"].rstrip("/") == MEDIA_PATH:
            return await twilio_media_app(scope, receive, send)
        return await protected_app(scope, receive, send)

    return app
