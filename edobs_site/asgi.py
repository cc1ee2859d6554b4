import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edobs_site.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

application = django_asgi_app
