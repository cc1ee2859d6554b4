"""OpenID Connect sign-in (README "Single sign-on"): mozilla-django-oidc with discovery from
EDOBS_OIDC_ISSUER, users keyed by the provider's `sub`, teams set from a claim at each sign-in."""
