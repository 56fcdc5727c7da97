"""The served schema says what the server enforces (the schema fuzz found requests the schema called valid that
the server refused, and an HTML answer where the schema promised JSON)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from conftest import PASSWORD
from core.api.schema import MAX_JSON_BYTES_KEYWORD, NO_NUL_PATTERN, json_size


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


def _validator(schema: dict, component: str):
    """A JSON Schema 2020-12 validator for one request component of the served document (refs resolve inside it)."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # schemathesis brings it

    return Draft202012Validator({**schema, "$ref": f"#/components/schemas/{component}"})


def _nested(levels: int, leaf: object = "deepest") -> object:
    value: object = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


def _start(org, metadata: dict):

    from django.core.cache import cache

    cache.clear()  # throttle windows
    return Client().post(
        "/api/call/start",
        data=json.dumps({"metadata": metadata}),
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key},
    )


@pytest.mark.parametrize(("levels", "accepted"), [(7, True), (8, False)])
def test_metadata_depth_is_bounded_in_the_schema_exactly_where_the_server_bounds_it(schema, org_a, levels, accepted):
    # metadata -> "a" -> levels of {"k": ...}: 8 levels below metadata is the most the server stores.
    metadata = {"a": _nested(levels)}
    assert _validator(schema, "CallStartRequest").is_valid({"metadata": metadata}) is accepted
    assert (_start(org_a, metadata).status_code == 201) is accepted
    if accepted:  # an empty object or list at the last level is within the bound; anything in it is one too many
        for leaf, fits in (({}, True), ([], True), ({"x": 1}, False), ([1], False)):
            deeper = {"a": _nested(levels, leaf)}
            assert _validator(schema, "CallStartRequest").is_valid({"metadata": deeper}) is fits
            assert (_start(org_a, deeper).status_code == 201) is fits


@pytest.mark.parametrize("value", [42, {"nested": "object"}, ["a", "list"]])
def test_an_intake_answer_is_text_yes_no_or_null_in_the_schema_and_the_server(schema, org_a, value):

    from calls.models import Call
    from calls.services import call_start

    org_a.event_forwarding = True  # the browser may send the intake
    org_a.save(update_fields=["event_forwarding"])
    call, token = call_start(organization=org_a, channel=Call.Channel.WEB)
    body = {"call_id": str(call.pk), "intake": {"reason": value}}
    assert not _validator(schema, "CallEndRequest").is_valid(body)
    response = Client().post(
        "/api/call/end",
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-Org-Key": org_a.publishable_key, "X-Call-Token": token},
    )
    assert response.status_code == 400, response.content
    assert "intake.reason" in response.json()["error"]["fields"]
    assert _validator(schema, "CallEndRequest").is_valid({**body, "intake": {"reason": "a checkup", "x": None}})


def test_call_metadata_size_is_stated_in_the_schema_and_enforced_at_that_size(schema, org_a):
    """JSON Schema has no keyword for a serialised size: x-max-json-bytes states it, and it is the size refused."""
    limit = schema["components"]["schemas"]["CallStartRequest"]["properties"]["metadata"][MAX_JSON_BYTES_KEYWORD]
    overhead = json_size({"note": ""})
    at_limit = {"note": "é" * ((limit - overhead) // 6)}  # non-ASCII counts as its \u escape
    at_limit["note"] += "x" * (limit - json_size(at_limit))
    assert json_size(at_limit) == limit
    assert _start(org_a, at_limit).status_code == 201

    response = _start(org_a, {"note": at_limit["note"] + "x"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["metadata"]
