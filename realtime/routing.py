"""WebSocket routes of the realtime app: the Twilio media bridge.

Twilio's Media Streams upgrade carries no Origin header and no session cookie; it is authenticated by its
X-Twilio-Signature (checked in the consumer) and a one-time stream token. `with_twilio_media` therefore routes
/twilio/media before the origin validator and auth middleware that guard the browser sockets (the validator would
refuse an Origin-less upgrade, and session lookups are wasted work on the phone path).
"""

from collections.abc import Awaitable, Callable

from django.urls import URLPattern, path

from realtime.consumers import Receive, Scope, Send, TwilioMediaConsumer
from realtime.telephony import MEDIA_PATH

twilio_media_app = TwilioMediaConsumer.as_asgi()

type ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

websocket_urlpatterns: list[URLPattern] = [
    path(MEDIA_PATH.lstrip("/"), twilio_media_app, name="twilio-media"),
]


def with_twilio_media(protected_app: ASGIApp) -> ASGIApp:
    """ASGI app: /twilio/media straight to the bridge, every other socket through `protected_app`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].rstrip("/") == MEDIA_PATH:
            return await twilio_media_app(scope, receive, send)
        return await protected_app(scope, receive, send)

    return app
