from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from events.api.metrics import metrics_view

# Only login and logout: password reset by mail is not configured, so it is not exposed.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("events.api.urls")),
    # Prometheus scrapes it: allowed networks or a bearer token, not a login (events.api.metrics)
    path("metrics", metrics_view, name="metrics"),
    path("", include("dashboards.urls")),
]

# Unknown URLs, refused requests and crashes: JSON under /api/, the site's pages elsewhere.
handler400 = "dashboards.errors.bad_request"
handler403 = "dashboards.errors.permission_denied"
handler404 = "dashboards.errors.page_not_found"
handler500 = "dashboards.errors.server_error"
