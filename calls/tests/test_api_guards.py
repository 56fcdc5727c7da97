"""The API's guards below the views: atomic rate counting, the bounded JSON parser, and the middleware on ASGI."""

from __future__ import annotations

import io
import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.test import AsyncClient
from rest_framework.exceptions import ParseError

from conftest import make_org
from core.api.parsers import LimitedJSONParser
from core.api.throttling import hit, parse_rate
from core.errors import ApiError, flatten_errors


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_parallel_burst_never_gets_more_than_the_limit_through():
    limit, workers, per_worker = 25, 10, 10
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)
    now = 1_000_000.0  # one fixed window for every request

    def burst() -> None:
        barrier.wait()
        for _ in range(per_worker):
            ok, _wait = hit("test:burst", limit, 60, now=now)
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=burst) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == limit
    assert len(allowed) == workers * per_worker


def test_a_new_window_starts_a_new_count_and_says_how_long_to_wait():
    assert hit("test:window", 1, 60, now=120.0) == (True, 60.0)
    assert hit("test:window", 1, 60, now=150.0) == (False, 30.0)
    assert hit("test:window", 1, 60, now=180.0)[0] is True


@pytest.mark.parametrize(("rate", "parsed"), [("30/min", (30, 60)), ("5/s", (5, 1)), ("100 / hour", (100, 3600))])
def test_rates_read_like_drf_rates(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "30", "thirty/min", "30/fortnight"])
def test_malformed_rates_are_refused(rate):
    with pytest.raises(ValueError):
        parse_rate(rate)


def test_the_parser_refuses_a_body_without_length_that_runs_past_the_limit(settings):
    settings.API_MAX_BODY_BYTES = 1024
    with pytest.raises(ApiError) as refused:
        LimitedJSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 2000 + b'"}'))
    assert refused.value.status_code == 413
    assert LimitedJSONParser().parse(io.BytesIO(b'{"a": 1}')) == {"a": 1}


@pytest.mark.parametrize("raw", [b'{"a": Infinity}', b"1e999", b"\xc3\x28"])
def test_the_parser_answers_parse_errors_for_pathological_json(raw):
    with pytest.raises(ParseError):
        LimitedJSONParser().parse(io.BytesIO(raw))


def test_nested_errors_flatten_to_dotted_paths():
    detail = {
        "agent": {"voice": ["bad"]},
        "business_hours": [{}, {"opens": ["bad time"]}],
        "non_field_errors": ["whole body"],
        "services": ["not a list"],
    }
    assert flatten_errors(detail) == {
        "agent.voice": ["bad"],
        "business_hours.1.opens": ["bad time"],
        "non_field_errors": ["whole body"],
        "services": ["not a list"],
    }


@pytest.mark.django_db(transaction=True)
async def test_cors_preflight_and_body_limit_work_under_asgi(settings):
    await sync_to_async(make_org)("clinic-async")
    client = AsyncClient()
    allowed = await client.options(
        "/api/call/start",
        headers={"Origin": "https://clinic-async.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == "https://clinic-async.example"
    foreign = await client.options(
        "/api/call/start", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign

    settings.API_MAX_BODY_BYTES = 1024
    too_big = await client.post("/api/call/start", data="x" * 5000, content_type="application/json")
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
