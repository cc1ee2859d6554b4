"""The static files as production serves them (WhiteNoise, edobs_site.staticfiles): after
`collectstatic` into a temporary STATIC_ROOT, pages name hashed files, which come back with a
ten-year immutable Cache-Control and, to a client that accepts it, gzipped: the vendored ELK
bundle (1.65 MB) in a fraction of its size."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client

ELK = "dashboards/vendor/elk.bundled.js"
FOREVER = "max-age=315360000, public, immutable"


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """One collectstatic for the module, into its own folder (never the checkout's var/)."""
    from django.test import override_settings

    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def collected(settings, static_root):
    settings.STATIC_ROOT = static_root  # resets the storage: it reads this manifest
    return static_root


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_hashed_static_files_are_cached_for_ten_years_and_gzipped(collected):
    url = static(ELK)
    assert re.fullmatch(r"/static/dashboards/vendor/elk\.bundled\.[0-9a-f]{12}\.js", url), url
    plain = (collected / ELK).stat().st_size
    assert plain > 1_500_000

    response = Client().get(url, headers={"accept-encoding": "gzip, deflate"})
    assert response.status_code == 200
    assert response["Cache-Control"] == FOREVER
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    assert len(body(response)) < plain / 3

    identity = Client().get(url)  # a client that takes no gzip gets the file as it is
    assert "Content-Encoding" not in identity
    assert len(body(identity)) == plain


def test_every_static_name_a_page_uses_is_hashed(collected):
    client = Client()
    for name in ("dashboards/app.css", "dashboards/common.js", "dashboards/architecture.js"):
        url = static(name)
        assert url != f"/static/{name}", url
        response = client.get(url, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, url
        assert response["Cache-Control"] == FOREVER, url


def test_paths_outside_the_collected_files_are_not_served(collected):
    client = Client()
    for path in ("/static/../manage.py", "/static/dashboards/../../../manage.py"):
        response = client.get(path)
        assert response.status_code in (301, 302, 404), path
        assert b"DJANGO_SETTINGS_MODULE" not in response.content
