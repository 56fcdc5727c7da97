"""A caller address already over its per-address limit is refused at the ASGI edge (core/floodgate.py): the same
429 as the throttle's, without Django or DRF running for it, so one address sending refusals back to back costs the
process almost nothing. Everything else (staff routes, staff ending a call, preflights, addresses under the limit,
a cache that cannot be read) goes on to Django as before."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from core import floodgate
from core.api.throttling import hit, parse_rate
from core.floodgate import CallerFloodGate

LIMIT = "5/min"


class Inner:
    """Stands in for Django behind the gate: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _send_through(gate: CallerFloodGate, path: str, *, method: str = "POST", headers=(), client="10.0.0.7"):
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "client": (client, 50000),
    }
    await gate(scope, receive, send)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


@pytest.fixture
def gate(settings, monkeypatch) -> tuple[CallerFloodGate, Inner]:
    monkeypatch.setattr(floodgate, "HOLD_SECONDS", 0.0)  # the hold has its own tests
    settings.CALLER_THROTTLE_RATES = {"caller_ip": LIMIT}
    cache.clear()
    inner = Inner()
    return CallerFloodGate(inner), inner


def _fill_window(ident: str) -> None:
    limit, period = parse_rate(LIMIT)
    for _ in range(limit):
        hit(f"caller_ip:{ident}", limit, period)


EVENTS = f"/api/calls/{uuid.uuid4()}/events"


async def test_an_address_over_its_limit_gets_the_throttles_429_without_reaching_django(gate):
    gate_app, inner = gate
    _fill_window("10.0.0.7")
    status, headers, body = await _send_through(gate_app, EVENTS, headers=[("Origin", "https://clinic.example")])
    assert status == 429 and inner.paths == []
    assert json.loads(body)["error"]["code"] == "throttled"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["cache-control"] == "no-store" and headers["server"] == "voiceagent"
    # The widget can read its refusal (it holds nothing of the clinic's); no credentials are allowed.
    assert headers["access-control-allow-origin"] == "https://clinic.example"
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize(
    "path", ["/api/call/start", "/api/realtime/session", f"/api/calls/{uuid.uuid4()}/transcript", EVENTS + "/"]
)
async def test_every_caller_route_is_gated(gate, path):
    gate_app, inner = gate
    _fill_window("10.0.0.7")
    assert (await _send_through(gate_app, path))[0] == 429 and inner.paths == []


async def test_under_the_limit_and_for_other_addresses_requests_reach_django(gate):
    gate_app, inner = gate
    _fill_window("10.0.0.7")
    assert (await _send_through(gate_app, EVENTS, client="10.0.0.8"))[0] == 204
    cache.clear()
    assert (await _send_through(gate_app, EVENTS))[0] == 204
    assert inner.paths == [EVENTS, EVENTS]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/escalations", ()),  # staff
        ("POST", "/api/call/end", (("Authorization", "Token abc"),)),  # staff ending a call: never caller-throttled
        ("OPTIONS", "/api/call/start", (("Origin", "https://clinic.example"),)),  # CORS preflight
        ("GET", "/healthz", ()),
        ("POST", "/api/no/such/route", ()),
    ],
)
async def test_staff_routes_preflights_and_unknown_paths_are_not_gated(gate, method, path, headers):
    gate_app, inner = gate
    _fill_window("10.0.0.7")
    assert (await _send_through(gate_app, path, method=method, headers=headers))[0] == 204
    assert inner.paths == [path]


async def test_ending_a_call_with_the_clinics_key_is_gated(gate):
    gate_app, inner = gate
    _fill_window("10.0.0.7")
    assert (await _send_through(gate_app, "/api/call/end", headers=[("X-Org-Key", "pk_x")]))[0] == 429
    assert inner.paths == []


async def test_a_cache_that_cannot_be_read_lets_the_request_through_to_the_throttle(gate, monkeypatch):
    gate_app, _inner = gate
    _fill_window("10.0.0.7")

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", down)
    assert (await _send_through(gate_app, EVENTS))[0] == 204


async def test_behind_a_trusted_proxy_the_gate_names_the_address_as_the_throttle_does(gate, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    gate_app, _inner = gate
    _fill_window("203.0.113.9")
    forwarded = [("X-Forwarded-For", "203.0.113.9")]
    assert (await _send_through(gate_app, EVENTS, headers=forwarded, client="10.0.0.1"))[0] == 429
    assert (await _send_through(gate_app, EVENTS, client="10.0.0.1"))[0] == 204


@pytest.mark.django_db
def test_the_requests_the_throttle_counted_are_the_ones_the_gate_reads(gate, org_a):
    """End to end with the real throttle: an address that used its window through Django is refused at the gate."""
    gate_app, inner = gate
    client = Client(REMOTE_ADDR="10.0.0.7")
    limit, _ = parse_rate(LIMIT)
    for _ in range(limit):
        client.post("/api/call/start", "{}", content_type="application/json", headers={"X-Org-Key": "pk_nope"})
    from asgiref.sync import async_to_sync

    assert async_to_sync(_send_through)(gate_app, "/api/call/start")[0] == 429
    assert inner.paths == []


def test_the_project_serves_http_through_the_gate():
    from voiceagent.asgi import application

    assert isinstance(application.application_mapping["http"], CallerFloodGate)


async def test_a_refusal_is_held_before_it_is_sent_so_a_loop_of_refusals_runs_slowly(gate, monkeypatch):
    gate_app, _inner = gate
    monkeypatch.setattr(floodgate, "HOLD_SECONDS", 0.3)
    _fill_window("10.0.0.7")
    started = time.monotonic()
    pending = asyncio.ensure_future(_send_through(gate_app, EVENTS))
    await asyncio.sleep(0.05)
    assert floodgate._held == {"10.0.0.7": 1} and not pending.done()
    assert (await pending)[0] == 429
    assert time.monotonic() - started >= 0.3  # held at least that long (a lower bound: no speed is asserted)
    assert floodgate._held == {}


async def test_past_the_per_address_hold_limit_refusals_are_sent_at_once(gate, monkeypatch):
    gate_app, _inner = gate
    monkeypatch.setattr(floodgate, "HOLD_SECONDS", 600.0)
    monkeypatch.setattr(floodgate, "_held", {"10.0.0.7": floodgate.HOLD_PER_ADDRESS})
    _fill_window("10.0.0.7")
    status, _headers, _body = await asyncio.wait_for(_send_through(gate_app, EVENTS), timeout=60)  # hang guard
    assert status == 429
    assert floodgate._held == {"10.0.0.7": floodgate.HOLD_PER_ADDRESS}
