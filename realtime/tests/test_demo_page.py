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


def test_a_loopback_upstream_is_the_fake_even_with_the_key_serve_sets(db, settings):
    # `serve` starts the fake on a loopback port and sets a key for it: the page still says it is the fake.
    settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "sk-local-fake", "http://127.0.0.1:43117/v1"
    assert 'id="fake-notice"' in Client().get("/demo/call/").content.decode()


def test_credentials_in_the_openai_url_never_reach_the_policy_header(db, settings):
    settings.OPENAI_BASE_URL = "https://user:s3cret@gateway.example:8443/v1"
    response = Client().get("/demo/call/")
    assert connect_src(response) == ["'self'", "https://gateway.example:8443"]
    assert "s3cret" not in response.headers["Content-Security-Policy"]


def test_make_run_on_another_port_lets_the_page_served_there_start_calls(fake_openai, settings):
    """`make run PORT=8123` seeds with `--origin http://127.0.0.1:8123`: the page on that address (either loopback
    name) may mint a session; a page on any other port may not."""
    from django.core.management import call_command

    from organizations.models import Organization

    call_command("seed_demo", "--force", "--origin", "http://127.0.0.1:8123", stdout=open("/dev/null", "w"))  # noqa: SIM115
    clinic = Organization.objects.get(slug="riverside-family-medicine")

    def mint(origin: str):
        return Client().post(
            "/api/realtime/session",
            {},
            content_type="application/json",
            headers={"X-Org-Key": clinic.publishable_key, "Origin": origin},
        )

    for origin in ("http://127.0.0.1:8123", "http://localhost:8123"):
        preflight = Client().options(
            "/api/realtime/session", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == origin
        response = mint(origin)
        assert response.status_code == 201, response.content
        assert response["Access-Control-Allow-Origin"] == origin
    refused = mint("http://127.0.0.1:8124")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
