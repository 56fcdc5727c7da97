"""Clinic home page benchmark: GET /admin/ (today, last 7 days, last 30 days) for a clinic admin, against the
console's call list page (the baseline, measured in the same run), at N calls in one clinic.

    .venv/bin/python bench/home.py                          # 10k calls
    .venv/bin/python bench/home.py --calls 1000000          # 1M calls (COPY load ~1 min on 2 cores)
    .venv/bin/python bench/home.py --calls 10000,1000000 --json out.json

The scratch database named by BENCH_HOME_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/va_home_bench)
is DROPPED and recreated, migrated, and filled by COPY with one clinic's calls spread over two years (every call
ended; 3 % voicemail, 5 % transferred, 70 % reviewed, usage on every call) and escalations on 8 % of them (80 %
acknowledged after 5 s to 30 min). Requests go through Django's whole stack in this process (test client with a
signed-in session: middleware, tenancy, the audit row, templates), DEBUG off. The query count of each page is
printed too: it must be the same at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchlib import cpu_model, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/va_home_bench"
SPREAD_DAYS = 730


def recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an unusual database name: {name!r}")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings
    from django.test.utils import override_settings

    # Plain static URLs: no collectstatic manifest here (the pages only name their assets).
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override_settings(STORAGES=storages).enable()


def make_clinic():
    import datetime as dt

    from conftest import make_org, make_user
    from organizations.models import BusinessHours, Membership

    org = make_org("bench-home")
    for weekday in range(5):
        BusinessHours.objects.create(organization=org, weekday=weekday, opens=dt.time(8), closes=dt.time(18))
    return org, make_user("bench-admin", org, Membership.Role.ADMIN)


def copy_rows(table: str, model, rows) -> None:
    from django.db import connection
    from psycopg.types.json import Jsonb

    fields = list(model._meta.concrete_fields)
    defaults = {f.attname: f.get_default() for f in fields}
    columns = ", ".join(f'"{f.column}"' for f in fields)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            values = {**defaults, **row}
            copy.write_row(
                [
                    Jsonb(values[f.attname]) if isinstance(values[f.attname], dict | list) else values[f.attname]
                    for f in fields
                ]
            )


def seed(org, count: int, *, seed_value: int) -> float:
    """Append `count` calls (and their escalations) of `org` with COPY; returns seconds."""
    from django.db import connection

    from calls.models import Call, Escalation

    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    escalations: list[dict] = []
    started = time.perf_counter()

    def calls():
        for _ in range(count):
            begun = now - timedelta(seconds=rng.randrange(60, SPREAD_DAYS * 86400))
            duration = rng.randrange(20, 900)
            escalated = rng.random() < 0.08
            level = rng.choice(["emergency", "urgent", "human", "uncertain"]) if escalated else ""
            call_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            voicemail = rng.random() < 0.03
            if escalated:
                acked = rng.random() < 0.8
                ack_at = begun + timedelta(seconds=30 + rng.randrange(5, 1800)) if acked else None
                escalations.append(
                    {
                        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                        "call_id": call_id,
                        "organization_id": org.pk,
                        "level": level,
                        "source": "keyword",
                        "status": "acknowledged" if acked else "open",
                        "created_at": begun + timedelta(seconds=30),
                        "acknowledged_at": ack_at,
                    }
                )
            yield {
                "id": call_id,
                "organization_id": org.pk,
                "channel": "phone" if rng.random() < 0.6 else "web",
                "status": rng.choices(["completed", "failed", "abandoned"], weights=[92, 3, 5])[0],
                "end_reason": "transferred" if rng.random() < 0.05 else "caller_hangup",
                "started_at": begun,
                "ended_at": begun + timedelta(seconds=duration),
                "duration_seconds": duration,
                "escalated": escalated,
                "escalation_level": level,
                "caller_phone": f"+1415{rng.randrange(10**7):07d}",
                "metadata": {"voicemail": {"recording_sid": "RE" + "0" * 32}} if voicemail else {},
                "reviewed_at": begun + timedelta(hours=2) if rng.random() < 0.7 else None,
                "last_activity_at": begun + timedelta(seconds=duration),
                "realtime_model": "gpt-realtime-2.1",
                "input_audio_tokens": rng.randrange(2_000, 40_000),
                "output_audio_tokens": rng.randrange(1_000, 20_000),
                "input_text_tokens": rng.randrange(500, 3_000),
            }

    copy_rows("calls_call", Call, calls())
    copy_rows("calls_escalation", Escalation, escalations)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE calls_call")
        cursor.execute("ANALYZE calls_escalation")
    return time.perf_counter() - started


def measure(client, url: str, requests: int) -> dict:
    from django.db import connection

    for _ in range(3):  # warm-up
        assert client.get(url).status_code == 200, url
    queries: list[str] = []

    def count(execute, sql, params, many, context):  # the test client's request_started clears connection.queries
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    times = []
    for _ in range(requests):
        begun = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - begun) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 99),
        "queries": len(queries),
    }


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}, Python " + (
        platform.python_version()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--calls", default="10000", help="comma list of sizes (calls in the clinic), e.g. 10000,1000000"
    )
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page and size")
    parser.add_argument("--json", default="", help="write the figures here (bench/run_all.py reads them)")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_HOME_DATABASE_URL", DEFAULT_DATABASE_URL)
    recreate_database(database_url)
    setup_django(database_url)
    from django.db import connection
    from django.test import Client

    org, admin = make_clinic()
    client = Client()
    client.force_login(admin)
    pages = {
        "call list (baseline)": f"/admin/calls/call/?organization__id__exact={org.pk}",
        "home, today": "/admin/?period=today",
        "home, last 7 days": "/admin/?period=7d",
        "home, last 30 days": "/admin/?period=30d",
    }
    sizes: dict[str, dict] = {}
    loaded = 0
    load_seconds: dict[str, float] = {}
    for size in sorted(int(value) for value in args.calls.split(",")):
        load_seconds[str(size)] = seed(org, size - loaded, seed_value=size)
        loaded = size
        results = {name: measure(client, url, args.requests) for name, url in pages.items()}
        sizes[str(size)] = {"calls": size, "pages": results}
        print(f"\n{size:,} calls in the clinic (loaded in {load_seconds[str(size)]:.0f} s):")
        base = results["call list (baseline)"]["p50_ms"]
        for name, row in results.items():
            print(
                f"  {name:22} p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                f"{row['p50_ms'] / base:5.2f}x baseline  {row['queries']} queries"
            )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = "PostgreSQL " + cursor.fetchone()[0]
    load = os.getloadavg()[0]
    print(f"\nmachine: {machine()}; {server}; load average {load:.2f}; {args.requests} requests per page")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "database": server,
                    "load_average": load,
                    "sizes": sizes,
                    "load_seconds": load_seconds,
                    "requests": args.requests,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
