"""Load-balancer probes: /healthz says the process lives, /readyz says it should get traffic (database and channel
layer reachable, not draining); neither needs auth, sets a session or returns patient data."""

from __future__ import annotations

import time

import pytest
from channels.layers import channel_layers
from django.db import OperationalError
from django.test import Client

from core import health


@pytest.fixture(autouse=True)
def _not_draining():
    health.set_draining(False)
    yield
    health.set_draining(False)


def test_healthz_answers_ok_without_auth_or_a_session(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "sessionid" not in response.cookies and "no-store" in response["Cache-Control"]


def test_readyz_is_ok_when_the_database_and_channel_layer_answer(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok", "draining": False},
    }


def test_a_draining_process_is_not_ready_but_still_alive(db):
    health.set_draining(True)

    ready = Client().get("/readyz")

    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert ready.json()["checks"]["draining"] is True
    assert Client().get("/healthz").status_code == 200
    health.set_draining(False)
    assert Client().get("/readyz").status_code == 200


def test_an_unreachable_database_makes_readyz_503(db, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:  # undone before the test database is torn down
        patch.setattr(health.connection, "cursor", broken)
        response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable" and response.json()["checks"]["database"] == "unavailable"


def test_an_unreachable_channel_layer_makes_readyz_503_within_its_bound(db, settings):
    # Nothing listens on port 9: a refused Redis must answer quickly, never hang the probe.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:9/0", "socket_connect_timeout": 0.5}]},
        }
    }
    channel_layers.backends.clear()
    try:
        started = time.monotonic()
        response = Client().get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        channel_layers.backends.clear()

    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == "unavailable"
    assert elapsed < 5  # bounded by the 1 s check timeout (plus slack), not by a socket default


def test_probes_are_get_only(db):
    assert Client().post("/healthz").status_code == 405
    assert Client().post("/readyz").status_code == 405
