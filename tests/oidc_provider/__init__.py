"""A real OpenID Connect provider for the sign-in tests: django-oauth-toolkit with OIDC on, an
RS256 key made at start, run as its own process on 127.0.0.1 (serve.py).

Its users and their `groups` claim come from a JSON file the test rewrites between sign-ins
(STATE_FILE in the folder EDOBS_TEST_OIDC_DIR): {"users": {"alice": ["payments"]},
"tamper": false}.  With "tamper": true the token endpoint changes the ID token's payload after
signing it (the claim an attacker would add), so its signature no longer matches.
"""

import json
import os
from pathlib import Path

STATE_FILE = "state.json"
PASSWORD = "provider-passw0rd"


def state_dir() -> Path:
    return Path(os.environ["EDOBS_TEST_OIDC_DIR"])


def read_state() -> dict:
    return json.loads((state_dir() / STATE_FILE).read_text())


def write_state(directory: Path, state: dict) -> None:
    path = Path(directory) / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(path)  # whole, never half-written, for a request reading it meanwhile
