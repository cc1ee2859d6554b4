"""ASGI entry point (daphne): HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edobs_site.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from edobs_site.backpressure import WebSocketBackpressure  # noqa: E402
from edobs_site.origins import SameOriginValidator  # noqa: E402
from edobs_site.startup import freeze_startup_objects  # noqa: E402
from events.live.consumers import UnknownPathConsumer  # noqa: E402
from events.routing import websocket_urlpatterns  # noqa: E402

# Any other socket path is closed with 4404 rather than failing in the router.
websocket_routes = [*websocket_urlpatterns, re_path(r"", UnknownPathConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        # Static files too, by WhiteNoise in Django's middleware (edobs_site.staticfiles): one
        # process to run, and the only paths it answers are the files it listed at startup.
        "http": django_asgi_app,
        # Outermost, so it wraps daphne's own send: a slow client's frames wait for its socket.
        # Then the Origin must be the site's own scheme, host and port (edobs_site.origins).
        "websocket": WebSocketBackpressure(
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes)))
        ),
    }
)
freeze_startup_objects()
