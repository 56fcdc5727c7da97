"""The served schema says what the server enforces (the schema fuzz found requests the schema called valid that
the server refused, and an HTML answer where the schema promised JSON)."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from conftest import PASSWORD
from core.api.schema import NO_NUL_PATTERN


@pytest.fixture
def schema(db) -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _parameter(schema: dict, path: str, name: str) -> dict:
    return next(p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name)["schema"]


@pytest.mark.parametrize("path", ["/api/calls", "/api/escalations"])
def test_page_size_carries_the_bounds_the_server_enforces(schema, path):
    page_size = _parameter(schema, path, "page_size")
    assert (page_size["minimum"], page_size["maximum"]) == (1, 100)


def test_a_blank_cursor_is_refused_by_escalations_and_the_schema_says_so(schema):
    assert _parameter(schema, "/api/escalations", "cursor")["minLength"] == 1


def test_every_input_string_says_it_may_not_hold_nul(schema):
    assert _parameter(schema, "/api/calls", "q")["pattern"] == NO_NUL_PATTERN
    caller = schema["components"]["schemas"]["CallerInfoRequest"]["properties"]
    assert caller["name"]["pattern"] == NO_NUL_PATTERN
    metadata = schema["components"]["schemas"]["CallStartRequest"]["properties"]["metadata"]
    # Keys too (OpenAPI 3.1 patternProperties): a key with a NUL matches no pattern, and no other key is allowed.
    assert metadata["additionalProperties"] is False
    assert list(metadata["patternProperties"]) == [NO_NUL_PATTERN]


def test_a_refused_csrf_check_under_api_answers_in_the_error_shape(staff_a):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=staff_a.username, password=PASSWORD)
    response = client.post(f"/api/calls/{uuid.uuid4()}/escalate", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "csrf_failed"


def test_the_console_keeps_djangos_csrf_page(staff_a):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=staff_a.username, password=PASSWORD)
    response = client.post("/admin/logout/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
