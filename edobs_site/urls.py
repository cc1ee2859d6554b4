from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from events.api.metrics import metrics_view
from sso.views import LoginView

# Only login and logout: password reset by mail is not configured, so it is not exposed.
# /oidc/: OpenID Connect sign-in, 404 unless EDOBS_OIDC_ISSUER is set (sso.views).
urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/", include("sso.urls")),
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
