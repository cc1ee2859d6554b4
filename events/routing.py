"""WebSocket routes (DESIGN section 6). Job ids may contain `:` and `/` (Map-run children)."""

from django.urls import path, re_path

from events.live.consumers import EventStreamConsumer, JobStreamConsumer

websocket_urlpatterns = [
    path("ws/events/", EventStreamConsumer.as_asgi()),
    re_path(r"^ws/jobs/(?P<job_id>.+)/$", JobStreamConsumer.as_asgi()),
]
