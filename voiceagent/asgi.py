"""ASGI entry point: HTTP through Django, WebSockets through Channels routing."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from calls.routing import websocket_urlpatterns as calls_ws  # noqa: E402
from core.bodylimit import BodyLimit  # noqa: E402
from core.drain import install_drain_signal  # noqa: E402
from core.floodgate import CallerFloodGate  # noqa: E402
from core.resilience import RequestDeadline  # noqa: E402
from realtime.routing import websocket_urlpatterns as realtime_ws  # noqa: E402
from realtime.routing import with_twilio_media  # noqa: E402

application = ProtocolTypeRouter(
    {
        # A caller address over its limit is refused before anything else runs (429); bodies are bounded before
        # they are read (413), and every HTTP request answers within REQUEST_DEADLINE_SECONDS, even with a frozen
        # database.
        "http": CallerFloodGate(BodyLimit(RequestDeadline(django_asgi_app))),
        # Twilio's media socket has no Origin/cookies (signature + stream token instead): routed before the guard.
        "websocket": with_twilio_media(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([*calls_ws, *realtime_ws])))
        ),
    }
)

# The triage model is loaded now, not on the first caller's utterance: that caller would wait for it (a third of a
# second) on the safety path, and every later call shares it.
from calls.triage.model import default_model  # noqa: E402

default_model()

# Everything loaded at startup lives as long as the process: keep it out of the garbage collector's full passes, which
# otherwise grow with Django's heap and stall every live call for tens of ms (bench/README.md, phone bridge).
gc.freeze()

# Deploys: SIGUSR1 (or `manage.py drain --pid`) stops new calls and exits once live calls ended (core/drain.py).
install_drain_signal()
