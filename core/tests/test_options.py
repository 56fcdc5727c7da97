"""OPTIONS on every API route answers (200, or 401/403/405 when it may not), never a 500: the action views validate
their bodies with serializers of their own, which DRF's metadata used to trip over (AssertionError)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from calls.services import escalation_create
from conftest import logged_in, make_call, token_for

ACTION_ROUTES = (
    "calls/{call}/escalate",
    "calls/{call}/deescalate",
    "escalations/{esc}/acknowledge",
    "escalations/{esc}/resolve",
)


def _concrete(regex_or_route: str, ids: dict[str, str], *, is_route: bool) -> str | None:
    text = regex_or_route
    if is_route:
        return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ids.get(m.group(1), ids["default"]), text)
    text = text.removeprefix("^").removesuffix("$").replace("/?", "")
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: ids.get(m.group(1), ids["default"]), text)
    return None if re.search(r"[\\()\[\]*+?|{}]", text) else text


def api_paths(ids: dict[str, str]) -> list[str]:
    """Every route of the URL map under /api/, with ids filled in."""
    found: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for entry in patterns:
            pattern = entry.pattern
            part = _concrete(str(pattern), ids, is_route=isinstance(pattern, RoutePattern))
            assert isinstance(pattern, RoutePattern | RegexPattern)
            if part is None:
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + part)
            elif isinstance(entry, URLPattern):
                found.append("/" + prefix + part)

    walk(get_resolver().url_patterns, "")
    return sorted({path for path in found if path.startswith("/api/")})


@pytest.fixture
def ids(org_a, staff_a) -> dict[str, str]:
    call = make_call(org_a)
    escalation = escalation_create(call=call, level="urgent", source="keyword", reason="bleeding")[0]
    return {
        "call_id": str(call.pk),
        "escalation_id": str(escalation.pk),
        "org_id": str(org_a.pk),
        "default": str(call.pk),
    }


def test_the_walk_finds_the_staff_action_routes(ids):
    paths = api_paths(ids)
    for route in ACTION_ROUTES:
        assert "/api/" + route.format(call=ids["call_id"], esc=ids["escalation_id"]) in paths
    assert len(paths) > 20


@pytest.mark.parametrize("who", ["anonymous", "token", "session"])
def test_options_on_every_api_route_never_answers_5xx(ids, staff_a, who):
    client = {
        "anonymous": Client(),
        "token": Client(headers={"Authorization": f"Token {token_for(staff_a)}"}),
        "session": logged_in(staff_a),
    }[who]
    answers = {path: client.options(path).status_code for path in api_paths(ids)}

    assert {path: code for path, code in answers.items() if code not in (200, 401, 403, 404, 405)} == {}
    # 404 only from the catch-all for unknown API paths.
    assert [path for path, code in answers.items() if code == 404] == ["/api/"]


def test_staff_get_a_description_of_the_action_endpoints(ids, staff_a):
    client = Client(headers={"Authorization": f"Token {token_for(staff_a)}"})
    for route in ACTION_ROUTES:
        response = client.options("/api/" + route.format(call=ids["call_id"], esc=ids["escalation_id"]))
        assert response.status_code == 200, route
        assert "POST" in response["Allow"] and response.json()["name"]
