"""Call admission under a small botnet, measured over real sockets: 24 loopback source addresses (127.0.0.x) flood
one clinic's publishable key through daphne, whose REMOTE_ADDR is each socket's own peer address (core.net
client_ip; no proxy is trusted by default, so spoofed X-Forwarded-For headers change nothing)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from calls.models import Call
from conftest import make_org
from fakes.simulate_phone import serve_in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FLOODERS = [f"127.0.0.{n}" for n in range(2, 26)]  # 24 addresses
GENUINE = [f"127.0.0.{n}" for n in range(100, 110)]


def _loopback_aliases_work() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.77", 0))
        except OSError:
            return False
    return True


def start_from(server: str, address: str, key: str, count: int) -> list[int]:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=server, transport=transport, timeout=30) as client:
        return [
            client.post(
                "/api/call/start",
                json={"channel": "web", "caller": {}},
                headers={"X-Org-Key": key, "X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(count)
        ]


@pytest.mark.skipif(not _loopback_aliases_work(), reason="this host cannot bind 127.0.0.x source addresses")
def test_two_dozen_flooding_addresses_cannot_lock_a_clinics_genuine_callers_out(sqlite_readers_do_not_lock, settings):
    # The default shares per day, not per minute: windows are fixed (aligned to the clock), and a run that straddled
    # a minute boundary gave every address a second share (seen on PostgreSQL, where the run is slower).
    settings.CALLER_THROTTLE_RATES = {"caller_ip": "30/day", "caller_org": "300/day", "caller_org_ip": "10/day"}
    clinic = make_org("clinic-flooded")
    other = make_org("clinic-other")
    server = serve_in_thread()

    with ThreadPoolExecutor(max_workers=6) as pool:
        floods = list(pool.map(lambda address: start_from(server, address, clinic.publishable_key, 30), FLOODERS))
    # Each flooding address got its share and no more; together they did not use up the clinic's budget.
    assert all(statuses.count(201) <= 10 and statuses.count(429) >= 20 for statuses in floods), floods
    admitted_junk = sum(statuses.count(201) for statuses in floods)
    assert admitted_junk <= 240

    # In the same minute, genuine callers from other addresses, one call each, all get through.
    genuine = [start_from(server, address, clinic.publishable_key, 1)[0] for address in GENUINE]
    assert genuine == [201] * len(GENUINE)
    assert start_from(server, "127.0.0.200", other.publishable_key, 1) == [201]  # other clinics never noticed
    assert Call.objects.filter(organization=clinic).count() == admitted_junk + len(GENUINE)
