"""API list/detail benchmark: GET /api/calls (page_size 25, newest first, with and without filters, and the next
page by cursor) and GET /api/calls/{id} at 10k and at 1M calls in PostgreSQL, through the real HTTP stack.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/voiceagent_bench .venv/bin/python bench/api.py
    .venv/bin/python bench/api.py --sizes 10000,1000000 --requests 300 --json out.json

The scratch database named by BENCH_DATABASE_URL (default above) is DROPPED and recreated, migrated, and filled
with one clinic's calls by COPY (1M rows in well under a minute on 2 cores). The server is daphne in a subprocess
(`python -m daphne voiceagent.asgi:application`, DEBUG off), the client httpx over loopback with a staff API token,
so the figures include authentication, tenancy scoping, the audit row written per read, serialisation and HTTP.

Per size and endpoint: sequential latency (p50/p99 over --requests requests after 20 warm-up requests) and
throughput with --concurrency client threads for --seconds. "Cost does not grow with table size" reads as p50 at 1M
within noise of p50 at 10k: the list is an index range scan on (organization, -started_at) whatever the table holds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchlib import cpu_model, free_port, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/voiceagent_bench"
DETAILED_CALLS = 50  # calls with transcript, intake and an escalation: the detail endpoint's targets


# --- database -------------------------------------------------------------------------------------------------------


def recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an unusual database name: {name!r}")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_clinic_and_token():
    from rest_framework.authtoken.models import Token

    from conftest import make_org, make_user
    from organizations.models import Membership

    org = make_org("bench-api")
    user = make_user("bench-staff", org, Membership.Role.STAFF)
    return org, Token.objects.create(user=user).key


def detailed_calls(org) -> list[str]:
    """Calls made through the services (transcript, intake, escalation), as the detail endpoint would see them."""
    from calls.models import Call
    from calls.services import call_end, call_start, escalation_create, transcript_segment_append

    ids = []
    for index in range(DETAILED_CALLS):
        call, _ = call_start(
            organization=org,
            channel=Call.Channel.PHONE,
            caller_name=f"Bench Caller {index}",
            caller_phone=f"+1415555{index:04d}",
        )
        for turn in range(6):
            transcript_segment_append(
                call=call,
                speaker="caller" if turn % 2 else "agent",
                text=f"turn {turn}: I would like to book an appointment next week",
            )
        escalation_create(call=call, level="urgent", source="keyword", reason="bleeding")
        call_end(
            call=call,
            intake={
                "patient_name": f"Bench Caller {index}",
                "date_of_birth": "1980-01-01",
                "callback_number": f"+1415555{index:04d}",
                "reason_for_call": "checkup",
                "urgency": "routine",
            },
        )
        ids.append(str(call.pk))
    return ids


def copy_calls(org, count: int, *, seed: int) -> float:
    """Append `count` ended calls of `org` with COPY; returns seconds. Columns come from the model, so a field added
    later gets its default."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    from calls.models import Call

    rng = random.Random(seed)
    fields = list(Call._meta.concrete_fields)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    now = datetime.now(UTC)
    defaults = {}
    for f in fields:
        if f.attname not in {
            "id",
            "organization_id",
            "channel",
            "status",
            "end_reason",
            "started_at",
            "ended_at",
            "duration_seconds",
            "escalated",
            "escalation_level",
            "urgency",
            "caller_phone",
            "caller_name",
            "metadata",
            "usage",
            "last_activity_at",
        }:
            defaults[f.attname] = f.get_default()
    started = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor, cursor.copy(f"COPY calls_call ({columns}) FROM STDIN") as copy:
        for _ in range(count):
            begun = now - timedelta(seconds=rng.randrange(60, 2 * 365 * 86400))
            duration = rng.randrange(20, 900)
            escalated = rng.random() < 0.05
            status = rng.choices(["completed", "failed", "abandoned"], weights=[90, 3, 7])[0]
            row = {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "organization_id": org.pk,
                "channel": "phone" if rng.random() < 0.6 else "web",
                "status": status,
                "end_reason": "caller_hangup",
                "started_at": begun,
                "ended_at": begun + timedelta(seconds=duration),
                "duration_seconds": duration,
                "escalated": escalated,
                "escalation_level": rng.choice(["emergency", "urgent", "human"]) if escalated else "",
                "urgency": rng.choice(["routine", "routine", "routine", "urgent", ""]),
                "caller_phone": f"+1415{rng.randrange(10**7):07d}",
                "caller_name": "",
                "metadata": {},
                "usage": {},
                "last_activity_at": begun + timedelta(seconds=duration),
                **defaults,
            }
            copy.write_row(
                [Jsonb(row[f.attname]) if isinstance(row[f.attname], dict | list) else row[f.attname] for f in fields]
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE calls_call")
    return time.perf_counter() - started


# --- HTTP -----------------------------------------------------------------------------------------------------------


class Server:
    """daphne on a free loopback port, serving the bench database."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "LOG_LEVEL": "WARNING",
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the subprocess
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "voiceagent.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Server:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError("daphne did not start:\n" + self.log.read().decode()[-2000:])
            try:
                httpx.get(f"{self.base}/healthz", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not answer within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(base: str, token: str, paths: list[str], *, requests: int, concurrency: int, seconds: float) -> dict:
    import httpx

    headers = {"Authorization": f"Token {token}"}
    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for i in range(requests + 20):
            path = paths[i % len(paths)]
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
            if i >= 20:
                latencies.append(elapsed)

    done = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            i = index
            while time.monotonic() < stop:
                response = client.get(paths[i % len(paths)])
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")
                done[index] += 1
                i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies),
        "sequential_rps": 1000 / statistics.fmean(latencies),
        "rps": sum(done) / wall,
        "requests": len(latencies) + sum(done),
    }


def endpoints(base: str, token: str, org, detail_ids: list[str]) -> dict[str, list[str]]:
    import httpx

    first = httpx.get(f"{base}/api/calls?page_size=25", headers={"Authorization": f"Token {token}"}).json()
    next_url = urlsplit(first["next"])
    cursor_path = f"{next_url.path}?{next_url.query}"
    return {
        "list, newest first": ["/api/calls?page_size=25"],
        "list, status+channel filter": ["/api/calls?page_size=25&status=completed&channel=phone"],
        "list, escalated filter": ["/api/calls?page_size=25&escalated=true"],
        # No bulk-loaded call is an emergency: the worst case for a filter the index does not cover.
        "list, rare filter (urgency=emergency)": ["/api/calls?page_size=25&urgency=emergency"],
        "list, next page (cursor)": [cursor_path],
        "detail (transcript, intake, escalation)": [f"/api/calls/{call_id}" for call_id in detail_ids],
    }


def run(sizes: list[int], *, requests: int, concurrency: int, seconds: float, database_url: str) -> dict:
    recreate_database(database_url)
    setup_django(database_url)
    from calls.models import Call

    org, token = bench_clinic_and_token()
    detail_ids = detailed_calls(org)
    results: dict = {"sizes": {}, "load_seconds": {}}
    for size in sorted(sizes):
        have = Call.objects.filter(organization=org).count()
        if size > have:
            results["load_seconds"][size] = copy_calls(org, size - have, seed=size)
        total = Call.objects.count()
        with Server() as server:
            paths = endpoints(server.base, token, org, detail_ids)
            results["sizes"][size] = {
                "rows": total,
                "endpoints": {
                    name: measure(server.base, token, urls, requests=requests, concurrency=concurrency, seconds=seconds)
                    for name, urls in paths.items()
                },
            }
    results["machine"] = f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}"
    results["server"] = "daphne (subprocess), httpx client over loopback, staff API token, DEBUG off"
    return results


def print_table(results: dict) -> None:
    print(f"machine: {results['machine']}; {results['server']}")
    for size, seconds in results["load_seconds"].items():
        print(f"loaded calls up to {int(size):,} by COPY in {seconds:.1f} s")
    print("\n| calls in table | endpoint | p50 ms | p99 ms | req/s (1 client) | req/s (concurrent) |")
    print("|---|---|---|---|---|---|")
    for block in results["sizes"].values():
        for name, row in block["endpoints"].items():
            print(
                f"| {int(block['rows']):,} | {name} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                f"{row['sequential_rps']:.0f} | {row['rps']:.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000", help="comma list of call counts (default 10k and 1M)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per endpoint and size")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads for the throughput run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the throughput run per endpoint")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    results = run(
        [int(s) for s in args.sizes.split(",")],
        requests=args.requests,
        concurrency=args.concurrency,
        seconds=args.seconds,
        database_url=database_url,
    )
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
