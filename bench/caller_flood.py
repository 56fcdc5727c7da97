"""Staff API latency while one hostile caller floods POST /api/calls/{id}/events (issue 13, finding F1).

    .venv/bin/python bench/caller_flood.py [--requests 100] [--flood-seconds 20] [--json PATH]

One daphne process serves both sides, as in production. The staff side is GET /api/escalations with a token; the
hostile side is one anonymous caller (the clinic's publishable key only) sending batches of forwarded tool calls
with unique 128-character ids (as many as a batch may hold: 16 since issue 13, 200 before), as fast as the server
answers. The figure is staff p50 with the flood over staff p50 idle: near 1x means the caller cannot hold the thread
that serves staff. Two runs, each on a fresh server: at the default caller limits (what one hostile address can do
to a deployment: most of its batches get 429), and with the limits raised so every batch is processed (the price
of the work itself, which shares one GIL with staff requests). The clinic has event forwarding on, the worst case
(every tool call runs). It prints; it asserts nothing about time.

Database: its own SQLite file in a temporary directory (BENCH_FLOOD_DATABASE_URL to use another; it is migrated).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from benchlib import cpu_model, percentile  # noqa: E402


def setup(database_url: str) -> tuple[str, str, str]:
    """Migrate, create the clinic (event forwarding on), a staff token and a few escalations; returns (publishable
    key, staff token, database url)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rest_framework.authtoken.models import Token

    from calls.models import Call
    from calls.services import call_start, escalation_create
    from conftest import make_org, make_user
    from organizations.models import Membership, Organization

    # (The field is absent before issue 13, where every clinic took forwarded tool calls: runs against old commits.)
    forwarding = {"event_forwarding": True} if hasattr(Organization, "event_forwarding") else {}
    run_id = uuid.uuid4().hex[:8]  # a database kept from an earlier run is fine
    org = make_org(f"bench-flood-{run_id}", **forwarding)
    user = make_user(f"bench-flood-{run_id}", org, Membership.Role.STAFF)
    for index in range(20):
        call, _ = call_start(organization=org, channel=Call.Channel.PHONE, caller_phone=f"+1415555{index:04d}")
        escalation_create(call=call, level="urgent", source="keyword", reason="bleeding")
    return org.publishable_key, Token.objects.create(user=user).key, database_url


def staff_latencies(base: str, token: str, requests: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30) as client:
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/api/escalations")
            out.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return out


def flood(base: str, key: str, connections: int, per_batch: int, stop: Any, results: Any) -> None:
    """The hostile caller, in a process of its own (its client threads must not share the GIL of the staff client
    that is being timed): one call, then `connections` connections sending batches back to back until `stop`."""
    import httpx

    with httpx.Client(base_url=base, headers={"X-Org-Key": key}, timeout=60) as client:
        started = client.post("/api/call/start", json={"channel": "web", "caller": {}})
        started.raise_for_status()
        call_id, token = started.json()["call_id"], started.json()["call_token"]
    counts: dict[str, int] = {"tool_calls_per_batch": per_batch}
    lock = threading.Lock()

    def connection(number: int) -> None:
        with httpx.Client(base_url=base, headers={"X-Org-Key": key, "X-Call-Token": token}, timeout=60) as client:
            batch = 0
            while not stop.is_set():
                events = [
                    {
                        "type": "response.function_call_arguments.done",
                        "call_id": f"{number}-{batch}-{n}-".ljust(128, "x"),
                        "name": "nope",
                        "arguments": "{}",
                    }
                    for n in range(per_batch)
                ]
                response = client.post(f"/api/calls/{call_id}/events", json={"events": events})
                with lock:
                    counts[f"HTTP {response.status_code}"] = counts.get(f"HTTP {response.status_code}", 0) + 1
                batch += 1

    threads = [threading.Thread(target=connection, args=(n,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(counts)


def _patient(server_class: type) -> type:
    """bench/api.py's daphne launcher, waiting up to 3 minutes for the first answer (a loaded 2-core machine)."""

    class PatientServer(server_class):  # type: ignore[misc,valid-type]
        def __enter__(self) -> PatientServer:
            import httpx

            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.log.seek(0)
                    raise RuntimeError("daphne did not start:\n" + self.log.read().decode()[-2000:])
                try:
                    httpx.get(f"{self.base}/healthz", timeout=5)
                    return self
                except httpx.TransportError:
                    time.sleep(0.5)
            self.__exit__()  # never leave the server running when the bench gives up on it
            raise RuntimeError("daphne did not answer within 180 s")

    return PatientServer


MODES = {
    # What one address can do against a deployment's defaults: its batches past the per-address limit get 429.
    "limits": ("at the default limits (30/min per address), 1 connection", False, 1),
    "limits_16": ("at the default limits, 16 parallel connections from the address", False, 16),
    # Throttles raised so every batch is processed: the cost of the work itself, on one GIL.
    "raised": ("throttles raised (every batch processed), 1 connection", True, 1),
}


def measure(*, key: str, token: str, requests: int, flood_seconds: float, raised: bool, connections: int) -> dict:
    for scope in ("IP", "ORG", "ORG_IP"):
        if raised:
            os.environ[f"THROTTLE_CALLER_{scope}_RATE"] = "100000/min"
        else:
            os.environ.pop(f"THROTTLE_CALLER_{scope}_RATE", None)
    from api import Server  # the same daphne launcher as bench/api.py

    with _patient(Server)() as server:
        staff_latencies(server.base, token, 10)  # warm-up
        idle = staff_latencies(server.base, token, requests)
        spawn = multiprocessing.get_context("spawn")
        stop, results = spawn.Event(), spawn.Queue()
        try:  # the most a batch may hold on the code under test
            from realtime.forwarded import MAX_TOOL_CALLS_PER_BATCH as per_batch
        except ImportError:  # before issue 13: any 200 events
            per_batch = 200
        args = (server.base, key, connections, per_batch, stop, results)
        hostile = spawn.Process(target=flood, args=args, daemon=True)
        hostile.start()
        time.sleep(min(5.0, flood_seconds / 4))  # let the state grow first (it did without bound before)
        deadline = time.monotonic() + flood_seconds
        flooded: list[float] = []
        while time.monotonic() < deadline:
            flooded += staff_latencies(server.base, token, 10)
        stop.set()
        counts = results.get(timeout=120)
        hostile.join(timeout=60)
    return {
        "idle_p50_ms": percentile(idle, 50),
        "idle_p99_ms": percentile(idle, 99),
        "flood_p50_ms": percentile(flooded, 50),
        "flood_p99_ms": percentile(flooded, 99),
        "ratio_p50": percentile(flooded, 50) / percentile(idle, 50),
        "staff_requests": len(flooded),
        "hostile_answers": counts,
        "connections": connections,
    }


def run(*, requests: int, flood_seconds: float, database_url: str) -> dict:
    key, token, _ = setup(database_url)
    modes = {
        mode: {
            "label": label,
            **measure(
                key=key,
                token=token,
                requests=requests,
                flood_seconds=flood_seconds,
                raised=raised,
                connections=connections,
            ),
        }
        for mode, (label, raised, connections) in MODES.items()
    }
    return {
        "machine": cpu_model(),
        "server": "daphne, one process",
        "database": database_url.split(":", 1)[0],
        "modes": modes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="idle staff requests")
    parser.add_argument("--flood-seconds", type=float, default=20.0, help="how long staff requests run under flood")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database_url = os.environ.get("BENCH_FLOOD_DATABASE_URL") or f"sqlite:///{scratch}/flood.sqlite3"
        results = run(requests=args.requests, flood_seconds=args.flood_seconds, database_url=database_url)
    print(f"machine: {results['machine']}; {results['server']}; {results['database']}")
    print("| staff GET /api/escalations | idle p50 / p99 ms | flooded p50 / p99 ms | p50 ratio | caller's answers |")
    print("|---|---|---|---|---|")
    for mode, (label, _raised, _connections) in MODES.items():
        m = results["modes"][mode]
        answers = {k: v for k, v in m["hostile_answers"].items() if k.startswith("HTTP")}
        print(
            f"| one caller flooding /events, {label} | {m['idle_p50_ms']:.1f} / {m['idle_p99_ms']:.1f} | "
            f"{m['flood_p50_ms']:.1f} / {m['flood_p99_ms']:.1f} | {m['ratio_p50']:.2f}x | {answers} |"
        )
    print("goal: within 1.5x at the default limits (a deployment's one hostile caller)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
