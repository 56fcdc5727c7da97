"""Input that a database or a log line cannot hold is refused with a 400 at one chokepoint per path: the API's JSON
parser, the query string and urlencoded forms (core/middleware.py), and the WebSocket frames (their own tests)."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
from django.test import Client

from calls.models import Call
from conftest import logged_in, token_for
from core import jsonsafe
from core.api.parsers import LimitedJSONParser
from core.errors import ApiError

START = "/api/call/start"


def start(org, raw: str) -> tuple[int, dict]:
    response = Client().post(START, raw, content_type="application/json", HTTP_X_ORG_KEY=org.publishable_key)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "raw",
    [
        '{"channel": "web", "caller": {"name": "Jane\\u0000Roe"}}',
        '{"channel": "web", "caller": {}, "metadata": {"page": "\\ud800"}}',
        '{"channel": "web", "caller": {}, "metadata": {"\\udfff": 1}}',
        '{"channel": "web", "caller": {"name": "lone low \\udc00 surrogate"}}',
    ],
)
def test_a_call_start_with_text_a_database_cannot_store_is_a_400_and_no_call(org_a, raw):
    status, body = start(org_a, raw)
    assert status == 400
    assert body["error"]["code"] == "invalid_text"
    assert Call.objects.count() == 0


def test_a_paired_surrogate_is_ordinary_text(org_a):
    status, _ = start(org_a, '{"channel": "web", "caller": {"name": "Smile \\ud83d\\ude00"}}')
    assert status == 201
    assert Call.objects.get().caller_name == "Smile \N{GRINNING FACE}"


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_json_nested_past_the_bound_is_a_400_too_deep_never_a_500(org_a, settings, depth):
    settings.API_MAX_BODY_BYTES = 1_000_000
    raw = '{"channel": "web", "caller": {}, "metadata": {"x": ' + "[" * depth + "]" * depth + "}}"
    status, body = start(org_a, raw)
    assert status == 400
    assert body["error"]["code"] == "too_deep"


def test_nesting_within_the_bound_parses():
    raw = ("[" * jsonsafe.MAX_JSON_DEPTH + "]" * jsonsafe.MAX_JSON_DEPTH).encode()
    assert LimitedJSONParser().parse(io.BytesIO(raw)) is not None
    with pytest.raises(ApiError) as refused:
        LimitedJSONParser().parse(io.BytesIO(b"[" + raw + b"]"))
    assert (refused.value.status_code, refused.value.error_code) == (400, "too_deep")


def test_the_check_names_the_problem_without_repeating_the_input():
    with pytest.raises(jsonsafe.UnsafeInput) as refused:
        jsonsafe.loads('{"name": "PGCANARY Jane Roe\\u0000"}')
    assert refused.value.code == "invalid_text"
    assert "PGCANARY" not in refused.value.message


def test_a_nul_in_an_api_query_string_is_a_400_invalid_text(staff_a):
    response = Client().get("/api/calls?q=Jane%00Roe", HTTP_AUTHORIZATION=f"Token {token_for(staff_a)}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_text"


def test_a_nul_in_the_console_search_is_a_400_not_a_server_error(staff_a):
    response = logged_in(staff_a).get("/admin/calls/call/?q=Jane%00Roe")
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_a_nul_in_a_form_post_is_a_400(db):
    form = urlencode({"CallSid": "CA" + "0" * 32, "From": "+1415\x00555"})
    response = Client().post("/twilio/voice", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_ordinary_query_input_still_works(staff_a):
    response = Client().get("/api/calls?q=Jane", HTTP_AUTHORIZATION=f"Token {token_for(staff_a)}")
    assert response.status_code == 200


def test_printable_writes_lone_surrogates_as_escapes():
    assert jsonsafe.printable("a\ud800b \N{GRINNING FACE}") == "a\\ud800b \N{GRINNING FACE}"


def test_the_refusal_names_where_in_the_body_the_text_is(org_a):
    status, body = start(org_a, '{"channel": "web", "caller": {}, "metadata": {"pages": ["ok", "bad\\u0000"]}}')
    assert status == 400
    assert list(body["error"]["fields"]) == ["metadata.pages.1"]
