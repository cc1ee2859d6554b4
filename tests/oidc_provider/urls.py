from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.oidc_provider.provider import TamperingTokenView

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("o/token/", TamperingTokenView.as_view()),  # before the include: it wins
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
