"""Run the test provider: `python -m tests.oidc_provider.serve PORT REDIRECT_URI CLIENT_ID SECRET`
with EDOBS_TEST_OIDC_DIR set (its database, key and state file).  Makes an RS256 key, the
database, the users of the state file (password PASSWORD) and one confidential client, then
serves on 127.0.0.1:PORT until terminated."""

import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def make_key(path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip


def provision(redirect_uri: str, client_id: str, secret: str) -> None:
    from django.contrib.auth.models import User
    from oauth2_provider.models import Application

    from tests.oidc_provider import PASSWORD, read_state

    for username in read_state()["users"]:
        User.objects.create_user(username, email=f"{username}@example.test", password=PASSWORD)
    Application.objects.create(
        name="edobs", client_id=client_id, client_secret=secret, redirect_uris=redirect_uri,
        client_type=Application.CLIENT_CONFIDENTIAL, skip_authorization=True,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        algorithm=Application.RS256_ALGORITHM,
    )  # fmt: skip


def main(port: str, redirect_uri: str, client_id: str, secret: str) -> None:
    from tests.oidc_provider import state_dir

    make_key(state_dir() / "key.pem")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    provision(redirect_uri, client_id, secret)
    call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
