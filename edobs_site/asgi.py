"""ASGI entry point (daphne): HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edobs_site.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from edobs_site.backpressure import WebSocketBackpressure  # noqa: E402
from edobs_site.origins import SameOriginValidator  # noqa: E402
from events.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The dashboard's few static files are served by the app itself: one process to run.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        # Outermost, so it wraps daphne's own send: a slow client's frames wait for its socket.
        # Then the Origin must be the site's own scheme, host and port (edobs_site.origins).
        "websocket": WebSocketBackpressure(
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
