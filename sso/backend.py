"""Sign-in through the OpenID provider of EDOBS_OIDC_ISSUER (mozilla-django-oidc's backend).

Who: a user is found by the provider's (issuer, sub) (sso.models.Identity), never by email: an
email claim may be unverified or handed to someone else, and matching it to an existing password
user would hand that user (perhaps a break-glass superuser) to whoever the provider says owns the
address.  So a first sign-in always makes a new user, named after `preferred_username` or the
email's local part (suffixed when taken), with no usable password, never staff nor superuser.

What they see: at each sign-in their teams become exactly the teams named in the
EDOBS_OIDC_TEAMS_CLAIM claim (sso.teams).  Teams and their accounts are made by a superuser;
a claim never creates one, so no claim grants an account by itself.

The ID token: RS256, checked against the provider's JWKS, its `iss` (the issuer), `aud` (our
client id), `exp` and `nonce`.  mozilla-django-oidc leaves `aud` and `iss` unchecked.
"""

import logging

import jwt
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from sso import discovery
from sso.models import Identity
from sso.teams import set_teams_from_claims

logger = logging.getLogger(__name__)


class OIDCBackend(OIDCAuthenticationBackend):
    def __init__(self, *args, **kwargs):
        # No discovery here: Django builds every backend for each password login too, and the
        # break-glass password login must work while the provider is down.
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        self.OIDC_RP_CLIENT_SECRET = self.get_settings("OIDC_RP_CLIENT_SECRET")
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_JWKS_ENDPOINT"))

    @staticmethod
    def get_settings(attr, *args):
        return discovery.oidc_setting(attr, *args)

    def authenticate(self, request, **kwargs):
        # Only the callback view (sso.views) passes a nonce: a password form posted to a URL
        # that carries ?code=&state= must not start a token exchange.
        if not discovery.enabled() or not kwargs.get("nonce"):
            return None
        return super().authenticate(request, **kwargs)

    def _verify_jws(self, payload, key):
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(f"ID token signed with {header.get('alg')!r}, not RS256")
        try:
            return jwt.decode(
                payload, key, algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID, issuer=discovery.provider_config()["issuer"],
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )  # fmt: skip
        except jwt.InvalidTokenError as error:
            raise SuspiciousOperation(f"ID token refused: {error}") from None

    def get_userinfo(self, access_token, id_token, payload):
        """The userinfo claims over the ID token's, for the same `sub` only (Core 5.3.2)."""
        user_info = super().get_userinfo(access_token, id_token, payload)
        if str(user_info.get("sub", "")) != str(payload["sub"]):
            raise SuspiciousOperation("userinfo is about another subject than the ID token")
        return {**payload, **user_info}

    def verify_claims(self, claims):
        return bool(str(claims.get("sub", "")).strip())

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(
            oidc_identity__issuer=discovery.issuer(), oidc_identity__subject=str(claims["sub"])
        )

    @transaction.atomic
    def create_user(self, claims):
        user = self.UserModel(username=self._free_username(claims), email=_email(claims))
        user.set_unusable_password()
        user.save()
        Identity.objects.create(user=user, issuer=discovery.issuer(), subject=str(claims["sub"]))
        logger.info("OIDC: new user %s for sub %s", user.username, claims["sub"])
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        email = _email(claims)
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        Identity.objects.filter(user=user).update(last_sign_in=timezone.now())
        set_teams_from_claims(user, claims)
        return user

    def _free_username(self, claims) -> str:
        field = self.UserModel._meta.get_field(self.UserModel.USERNAME_FIELD)
        base = _username_base(claims)[: field.max_length - 8]
        name, number = base, 1
        while self.UserModel.objects.filter(**{self.UserModel.USERNAME_FIELD: name}).exists():
            number += 1
            name = f"{base}-{number}"
        return name


def _email(claims) -> str:
    email = claims.get("email")
    return email.strip() if isinstance(email, str) else ""


def _username_base(claims) -> str:
    """preferred_username, else the email's local part, else `sub`: letters, digits, @.+-_."""
    for value in (claims.get("preferred_username"), _email(claims).split("@")[0], claims["sub"]):
        if isinstance(value, str):
            cleaned = "".join(c for c in value if c.isascii() and (c.isalnum() or c in "@.+-_"))
            if cleaned:
                return cleaned
    return "oidc-user"
