from django.urls import path

from sso import views

# The redirect URI to register at the provider: <site>/oidc/callback/
urlpatterns = [
    path("authenticate/", views.AuthenticateView.as_view(), name="oidc_authentication_init"),
    path("callback/", views.CallbackView.as_view(), name="oidc_authentication_callback"),
]
