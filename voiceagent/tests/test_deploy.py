"""Production settings: `check --deploy` passes, and every response carries the security headers (HSTS, CSP with
frame-ancestors 'none', nosniff, referrer policy, COOP) while the console, the API docs and the board still work
under the policy."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from conftest import make_call

ROOT = Path(__file__).resolve().parents[2]
# Variables the test environment sets that production would not.
TEST_ONLY = {"DEBUG", "SECRET_KEY", "SECURE_SSL_REDIRECT", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"}


def production_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in TEST_ONLY}
    env.update(
        DJANGO_SETTINGS_MODULE="voiceagent.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(48),  # 64 characters, many unique
        ALLOWED_HOSTS="voiceagent.clinic.example",
        **overrides,
    )
    return env


def manage(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_production_settings():
    # Production names an SMTP server: on-call e-mail pages must really be sent.
    result = manage("check", "--deploy", "--fail-level", "WARNING", EMAIL_HOST="smtp.clinic.example")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_an_smtp_server_for_pages():
    # Without EMAIL_HOST the console mail backend would only print the on-call pages: Django's deploy check says so.
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0 and "mail.E001" in result.stdout + result.stderr


def test_check_deploy_fails_when_https_is_switched_off():
    # The gate bites: the test suite's own override would not pass in production.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", SECURE_SSL_REDIRECT="false", EMAIL_HOST="smtp.clinic.example"
    )
    assert result.returncode != 0 and "security.W008" in result.stdout + result.stderr


def test_production_defaults_are_the_secure_ones():
    probe = (
        "import json, django; from django.conf import settings as s; django.setup(); print(json.dumps({"
        "'redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS, 'sub': s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
        "'preload': s.SECURE_HSTS_PRELOAD, 'session_secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': "
        "s.CSRF_COOKIE_SECURE, 'exempt': s.SECURE_REDIRECT_EXEMPT, 'idle': s.SESSION_COOKIE_AGE, "
        "'every': s.SESSION_SAVE_EVERY_REQUEST, 'absolute': s.SESSION_ABSOLUTE_LIFETIME_SECONDS, "
        "'ttl': s.API_TOKEN_TTL_HOURS, 'csp': s.SECURE_CSP}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["redirect"] is True and values["hsts"] >= 31_536_000 and values["sub"] and values["preload"]
    assert values["session_secure"] and values["csrf_secure"]
    assert values["exempt"] == ["^healthz$", "^readyz$"]
    assert (values["idle"], values["every"], values["absolute"], values["ttl"]) == (900, True, 43_200, 12)
    assert values["csp"]["frame-ancestors"] == ["'none'"] and "'unsafe-inline'" not in values["csp"]["script-src"]


def test_the_knobs_are_env_overridable_and_checked():
    result = manage("check", SESSION_IDLE_TIMEOUT_SECONDS="7200", SESSION_ABSOLUTE_LIFETIME_SECONDS="3600")
    assert result.returncode != 0 and "SESSION_ABSOLUTE_LIFETIME_SECONDS" in result.stderr
    result = manage("check", API_TOKEN_TTL_HOURS="soon")
    assert result.returncode != 0 and "API_TOKEN_TTL_HOURS" in result.stderr


# --- Headers on real responses (in process, with the production switches on) ---------------------------------------


@pytest.fixture
def production(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


def assert_security_headers(response) -> None:
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] in {"same-origin", "unsafe-none"}
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
    script_src = re.search(r"script-src [^;]*", csp)
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src.group(0)


def test_plain_http_is_redirected_to_https_except_the_health_probes(production, db):
    response = Client().get("/api/calls")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").status_code in (200, 503)  # answered, not redirected


@pytest.mark.parametrize("path", ["/api/calls", "/admin/", "/admin/calls/call/", "/board/", "/api/escalations"])
def test_every_page_and_api_answer_carries_the_security_headers(production, org_a, staff_a, path):
    make_call(org_a)
    client = Client()
    client.force_login(staff_a)
    response = client.get(path, secure=True)
    assert response.status_code == 200
    assert_security_headers(response)
    assert "no-store" in response["Cache-Control"]


def test_errors_and_the_login_page_carry_them_too(production, db):
    for path in ("/api/calls", "/api/nowhere", "/admin/login/"):
        assert_security_headers(Client().get(path, secure=True))


def test_the_api_docs_start_up_script_runs_under_the_policy_by_nonce(production, db):
    response = Client().get("/api/docs/", secure=True)

    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    nonce_match = re.search(r"'nonce-([^']+)'", csp)
    assert nonce_match is not None
    nonce = nonce_match.group(1)
    html = response.content.decode()
    inline = re.findall(r"<(script|style)(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce}"' in attributes for _tag, attributes in inline)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html  # same origin


def test_console_and_board_pages_have_no_inline_script_the_policy_would_block(production, org_a, admin_a):
    client = Client()
    client.force_login(admin_a)
    call = make_call(org_a)
    for path in ("/admin/", f"/admin/calls/call/{call.pk}/change/", "/board/", "/admin/login/"):
        html = client.get(path, secure=True).content.decode()
        executable = [
            attributes
            for attributes in re.findall(r"<script([^>]*)>", html)
            if "src=" not in attributes and "application/json" not in attributes
        ]
        assert executable == [], path


def test_session_and_csrf_cookies_are_secure_and_http_only_in_production(production, staff_a):
    from conftest import PASSWORD

    client = Client()
    client.get("/admin/login/", secure=True)
    response = client.post("/admin/login/", {"username": "sam", "password": PASSWORD, "next": "/admin/"}, secure=True)
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
