"""What every response says about the platform: our own request id (a client's only through a trusted proxy),
no server software name, and the API's error shape for a failed CSRF check."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from calls.models import AuditEvent
from conftest import logged_in, make_call

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_client_chosen_request_id_is_replaced_by_our_own(org_a, staff_a):
    make_call(org_a)
    response = logged_in(staff_a).get("/api/calls", headers={"X-Request-ID": "forged-request-id-0001"})

    assert response.status_code == 200
    assert GENERATED.fullmatch(response["X-Request-ID"])
    assert set(AuditEvent.objects.filter(via="api").values_list("request_id", flat=True)) == {response["X-Request-ID"]}


def test_a_trusted_proxys_request_id_is_kept_when_it_is_safe(org_a, staff_a, settings):
    settings.TRUST_REQUEST_ID_HEADER = True
    make_call(org_a)
    response = logged_in(staff_a).get("/api/calls", headers={"X-Request-ID": "proxy-req.0001_ab"})

    assert response["X-Request-ID"] == "proxy-req.0001_ab"
    assert set(AuditEvent.objects.filter(via="api").values_list("request_id", flat=True)) == {"proxy-req.0001_ab"}


@pytest.mark.parametrize("unsafe", ["abc def\tinjected", "short", "x" * 65, "a%0aFAKE-LINE", "ünicode-id-0001"])
def test_even_a_trusted_request_id_of_an_unsafe_shape_is_replaced(db, settings, unsafe):
    settings.TRUST_REQUEST_ID_HEADER = True
    response = Client().get("/healthz", headers={"X-Request-ID": unsafe})

    assert GENERATED.fullmatch(response["X-Request-ID"])


@pytest.mark.parametrize("path", ["/healthz", "/api/calls", "/api/nowhere", "/admin/login/"])
def test_no_response_names_the_server_software(db, path):
    assert Client().get(path)["Server"] == "voiceagent"


def test_an_unknown_api_post_with_a_session_cookie_answers_in_the_error_shape(staff_a):
    client = logged_in(staff_a)
    client.handler.enforce_csrf_checks = True

    response = client.post("/api/nowhere", {"a": 1}, content_type="application/json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_failed_csrf_check_under_the_api_answers_in_the_error_shape(rf):
    from core.errors import csrf_failure

    response = csrf_failure(rf.post("/api/something"), reason="CSRF cookie not set.")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "csrf_failed"
    # Outside the API, Django's own page.
    assert "text/html" in csrf_failure(rf.post("/admin/login/"), reason="x")["Content-Type"]
