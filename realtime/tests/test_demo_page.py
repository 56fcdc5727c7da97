"""The reference browser-call page a clinic's web developer copies."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_demo_page_serves_the_flow_script_and_warns_when_running_on_the_fake(org_a, settings):
    settings.OPENAI_API_KEY = ""
    response = Client().get("/demo/call/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "realtime/demo_call.js" in html and 'id="fake-notice"' in html
    assert org_a.publishable_key not in html  # prefilled only in development


def test_demo_page_has_no_fake_notice_with_a_real_key_and_prefills_in_development(org_a, settings):
    settings.OPENAI_API_KEY, settings.DEBUG = "sk-real", True
    html = Client().get("/demo/call/").content.decode()
    assert 'id="fake-notice"' not in html and org_a.publishable_key in html
    assert "sk-real" not in html


def test_demo_script_follows_the_documented_flow():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "static" / "realtime" / "demo_call.js").read_text()
    for step in (
        "/api/realtime/session",
        "/realtime/calls",
        "/realtime`",
        "/api/call/end",
        "oai-events",
        "X-Call-Token",
        "textContent",
    ):
        assert step in script
    assert "innerHTML" not in script
