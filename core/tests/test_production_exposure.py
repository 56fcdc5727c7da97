"""In production the API map and the demo page are not public: /api/schema, /api/docs and /demo/call/ are for
console staff unless PUBLIC_API_DOCS / PUBLIC_DEMO_PAGE switch them on (the default in DEBUG)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client

from conftest import logged_in
from voiceagent.tests.test_deploy import ROOT, production_env


@pytest.fixture
def production(settings):
    settings.PUBLIC_API_DOCS = False
    settings.PUBLIC_DEMO_PAGE = False


def test_production_defaults_keep_docs_and_demo_private_and_debug_opens_them():
    code = "from django.conf import settings as s; print(s.PUBLIC_API_DOCS, s.PUBLIC_DEMO_PAGE)"
    script = f"import django; django.setup(); {code}"

    def read(**overrides: str) -> str:
        env = {**production_env(), **overrides}
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    assert read() == "False False"
    assert read(PUBLIC_API_DOCS="true", PUBLIC_DEMO_PAGE="true") == "True True"
    assert read(DEBUG="true") == "True True"


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_anonymous_visitors_cannot_read_the_api_map_in_production(production, db, path):
    response = Client().get(path)
    assert response.status_code in (401, 403)
    assert b"/api/calls" not in response.content


def test_the_demo_page_is_a_plain_404_for_anonymous_visitors_in_production(production, db):
    assert Client().get("/demo/call/").status_code == 404


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/demo/call/"])
def test_console_staff_still_read_them_in_production(production, staff_a, path):
    assert logged_in(staff_a).get(path).status_code == 200


def test_a_setting_opens_them_to_everyone(settings, db):
    settings.PUBLIC_API_DOCS = True
    settings.PUBLIC_DEMO_PAGE = True
    for path in ("/api/schema/", "/api/docs/", "/demo/call/"):
        assert Client().get(path).status_code == 200
