"""The sign-in pages: the login page (provider first when OIDC is on), the redirect to the
provider, and its callback.  Without EDOBS_OIDC_ISSUER the two OIDC URLs are 404s."""

import logging

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import render
from mozilla_django_oidc import views as oidc_views
from requests import RequestException

from sso import discovery

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """Django's login page; with OIDC on it offers "Sign in with <provider>" above the
    password form, which stays for the demo and for break-glass superusers."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_provider"] = settings.EDOBS_OIDC_NAME if discovery.enabled() else ""
        return context


def refused(request, reason: str, status: int = 403):
    """The page of a sign-in that did not happen; the reason is ours, never the provider's."""
    if request.user.is_authenticated:
        auth.logout(request)
    return render(request, "sso/refused.html", {"reason": reason}, status=status)


class _Enabled:
    def dispatch(self, request, *args, **kwargs):
        if not discovery.enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            discovery.provider_config()
        except discovery.DiscoveryFailed:
            return refused(request, "The sign-in provider cannot be reached.", status=503)
        return super().dispatch(request, *args, **kwargs)


class AuthenticateView(_Enabled, oidc_views.OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (state, nonce and PKCE kept in the
    session), found by discovery."""

    def __init__(self, *args, **kwargs):
        super(oidc_views.OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")

    OIDC_OP_AUTH_ENDPOINT = property(
        lambda self: self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
    )

    @staticmethod
    def get_settings(attr, *args):
        return discovery.oidc_setting(attr, *args)


class CallbackView(_Enabled, oidc_views.OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code; a token that fails its checks
    (signature, issuer, audience, expiry, nonce) leaves no session and says so."""

    @staticmethod
    def get_settings(attr, *args):
        return discovery.oidc_setting(attr, *args)

    def get(self, request):
        try:
            return super().get(request)
        except SuspiciousOperation as error:
            logger.warning("OIDC sign-in refused: %s", error)
            return refused(request, "The sign-in provider's answer did not pass our checks.")
        except (RequestException, discovery.DiscoveryFailed) as error:
            logger.warning("OIDC sign-in failed at the provider: %s", error)
            return refused(request, "The sign-in provider did not answer.", status=502)

    def login_failure(self):
        if self.request.GET.get("error"):
            return refused(self.request, "The sign-in provider did not sign you in.")
        return refused(self.request, "The sign-in did not complete; please try again.")
