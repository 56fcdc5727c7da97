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


def connect_src(response) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    (directive,) = [d.strip() for d in policy.split(";") if d.strip().startswith("connect-src ")]
    return directive.split()[1:]


def test_the_demo_page_may_connect_to_exactly_the_configured_openai_origin(db, settings):
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
    assert connect_src(Client().get("/demo/call/")) == ["'self'", "https://api.openai.com"]


def test_the_offline_demo_may_connect_to_the_fakes_origin_with_its_port(db, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:43117/v1"  # what `serve` sets when it starts the fake
    assert connect_src(Client().get("/demo/call/")) == ["'self'", "http://127.0.0.1:43117"]


def test_other_pages_keep_connecting_to_this_origin_only(db, settings):
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
    assert connect_src(Client().get("/admin/login/")) == ["'self'"]
    policy = Client().get("/demo/call/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy  # the rest unchanged
