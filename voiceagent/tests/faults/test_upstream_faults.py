"""OpenAI upstream faults the minting tests (realtime/tests/test_minting.py) do not cover: a body that trickles in,
and the circuit breaker that stops asking a failing upstream."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from calls.models import Call
from fakes.openai import Failure, FakeOpenAI
from realtime.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpen, CircuitBreaker
from realtime.upstream import mint_breaker

API_KEY = "sk-faults-upstream-SECRET-0123456789"
RESET_SECONDS = 1.0


@pytest.fixture
def fake_openai(settings):
    with FakeOpenAI.start_in_thread(time_scale=0.02, pace=0.0, api_key=API_KEY) as handle:
        settings.OPENAI_BASE_URL = handle.base_url
        settings.OPENAI_API_KEY = API_KEY
        settings.OPENAI_TIMEOUT_SECONDS = 2.0
        settings.OPENAI_BREAKER_THRESHOLD = 5
        settings.OPENAI_BREAKER_RESET_SECONDS = RESET_SECONDS
        yield handle


@pytest.fixture
def breaker_clock(fake_openai) -> list[float]:
    """The minting breaker's clock, moved by the test (`clock[0] += RESET_SECONDS`): its open period ends when the
    test says so, not when a slow machine happens to take longer than the period between two requests."""
    clock = [0.0]
    mint_breaker().clock = lambda: clock[0]  # this fake's breaker (one per upstream URL), fresh for each test
    return clock


def mint(org):
    sent = time.monotonic()
    response = Client().post(
        "/api/realtime/session", {}, content_type="application/json", headers={"X-Org-Key": org.publishable_key}
    )
    return response, time.monotonic() - sent


def assert_no_secret(response) -> None:
    body = response.content.decode()
    assert API_KEY not in body and "sk-" not in body and "ek_" not in body


@pytest.mark.django_db
def test_a_body_that_trickles_in_is_cut_at_the_time_out_with_504(fake_openai, org_a):
    fake_openai.fake.failure = Failure(kind="slow_body", delay=1.0)  # 8 chunks, 1 s apart: each read is "on time"
    response, took = mint(org_a)
    assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
    # Cut by the 2 s total time-out, not after the whole body (8 s; every single read is on time): only a missing
    # total deadline takes that long, a loaded machine does not.
    assert took < 6.0
    assert_no_secret(response)
    assert not Call.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "failure",
    [Failure(kind="server_error"), Failure(kind="rate_limit", retry_after=1), Failure(kind="malformed_json")],
    ids=["500", "429", "malformed"],
)
def test_five_failed_mints_open_the_breaker_which_answers_503_without_asking_then_probes(
    fake_openai, breaker_clock, org_a, failure
):
    fake_openai.fake.failure = failure
    for _ in range(5):
        response, _took = mint(org_a)
        assert response.status_code == 502
    asked = len(fake_openai.requests_to("/realtime/client_secrets"))
    refused, took = mint(org_a)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "upstream_unavailable"
    assert int(refused["Retry-After"]) >= 1
    # Refused at once: OpenAI was not asked (the time it took is printed with -s; it is no measure of that).
    assert len(fake_openai.requests_to("/realtime/client_secrets")) == asked
    print(f"\n[faults] breaker refusal took {took * 1000:.1f}ms")
    assert_no_secret(refused)
    # After the open period one probe goes through; it succeeds, and the breaker is closed again.
    fake_openai.fake.failure = None
    breaker_clock[0] += RESET_SECONDS
    probed, _took = mint(org_a)
    assert probed.status_code == 201
    assert mint(org_a)[0].status_code == 201


@pytest.mark.django_db
def test_a_failed_probe_opens_the_breaker_again(fake_openai, breaker_clock, org_a):
    fake_openai.fake.failure = Failure(kind="close")
    for _ in range(5):
        assert mint(org_a)[0].status_code == 502
    breaker_clock[0] += RESET_SECONDS
    asked = len(fake_openai.requests_to("/realtime/client_secrets"))
    assert mint(org_a)[0].status_code == 502  # the probe, still failing
    probed = len(fake_openai.requests_to("/realtime/client_secrets"))
    assert probed > asked  # the probe did go upstream
    refused, _took = mint(org_a)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "upstream_unavailable"
    assert len(fake_openai.requests_to("/realtime/client_secrets")) == probed  # the refusal did not


@pytest.mark.django_db
def test_a_rejected_request_does_not_count_as_an_upstream_failure(fake_openai, org_a):
    fake_openai.fake.failure = Failure(kind="error", status=400)
    for _ in range(7):
        assert mint(org_a)[0].status_code == 502  # upstream_rejected: the upstream is healthy
    fake_openai.fake.failure = None
    assert mint(org_a)[0].status_code == 201


def test_the_breaker_lets_one_probe_through_when_half_open():
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, reset_after=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.record_failure()
    assert breaker.state == OPEN
    with pytest.raises(BreakerOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_after == 10
    now[0] = 10.0
    assert breaker.state == HALF_OPEN
    breaker.before_call()  # the probe
    with pytest.raises(BreakerOpen):
        breaker.before_call()  # a second caller while the probe runs
    breaker.record_success()
    assert breaker.state == CLOSED
    breaker.before_call()
