"""The test provider's claims and its tampering token endpoint."""

import base64
import json

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.views import TokenView

from tests.oidc_provider import read_state


class Validator(OAuth2Validator):
    # `groups` goes with the openid scope, as many providers send it
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "openid"}

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.username,
            "email": user.email,
            "groups": read_state()["users"].get(user.username, []),
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tampered(id_token: str) -> str:
    """The ID token with a `groups` claim an attacker wants, under the original signature."""
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = [*claims.get("groups", []), "ops"]
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


class TamperingTokenView(TokenView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200 and read_state().get("tamper"):
            body = json.loads(response.content)
            body["id_token"] = tampered(body["id_token"])
            response.content = json.dumps(body).encode()
        return response
