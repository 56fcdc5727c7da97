"""Realtime benchmarks: session minting through our endpoint vs. straight to the same fake upstream, and call event
pipeline throughput (events persisted per second) for N concurrent calls.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/voiceagent_bench .venv/bin/python bench/realtime.py

The database named by DATABASE_URL is migrated and filled with a bench clinic (use a scratch database; without
DATABASE_URL a temporary SQLite file is used). Minting goes over real HTTP to daphne in a subprocess, which calls
the shipped fake OpenAI; "direct" is the same request sent to the fake itself in the same run, so the ratio is what
our endpoint adds (auth, throttling, session building, the call row, JSON). Prints one table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchlib import free_port, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _bench_clinic():
    from organizations.models import BusinessHours, Organization
    from organizations.services import organization_create

    org = Organization.objects.filter(slug="bench-clinic").first()
    if org is None:
        org = organization_create(
            name="Bench Clinic",
            slug="bench-clinic",
            timezone="America/New_York",
            escalation_phone="+14155550100",
            allowed_origins=["https://bench.example"],
        )
        for weekday in range(5):
            BusinessHours.objects.create(organization=org, weekday=weekday, opens="08:00", closes="18:00")
    return org


def bench_minting(org, fake, *, requests: int) -> dict:
    import httpx

    from realtime.services import session_for

    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-bench",
        "THROTTLE_CALLER_IP_RATE": "1000000/min",
        "THROTTLE_CALLER_ORG_RATE": "1000000/min",
        "THROTTLE_CALLER_ORG_IP_RATE": "1000000/min",  # the per-address share of a clinic's calls: one address here
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server subprocess below
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "voiceagent.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=10) as client:
            for _ in range(200):
                if server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError("daphne did not start:\n" + log.read().decode()[-2000:])
                try:
                    client.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            session = session_for(org)
            direct_body = {"expires_after": {"anchor": "created_at", "seconds": 120}, "session": session}
            ours, direct = [], []
            headers = {"X-Org-Key": org.publishable_key}
            for i in range(requests + 10):  # the first 10 of each warm up
                started = time.perf_counter()
                response = client.post(f"{base}/api/realtime/session", json={}, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 201, response.text
                if i >= 10:
                    ours.append(elapsed * 1000)
                started = time.perf_counter()
                response = client.post(
                    f"{fake.base_url}/realtime/client_secrets",
                    json=direct_body,
                    headers={"Authorization": "Bearer sk-bench"},
                )
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if i >= 10:
                    direct.append(elapsed * 1000)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {"ours": ours, "direct": direct}


def bench_pipeline(org, *, calls: int, turns: int) -> dict:
    from django.db import close_old_connections, connection

    from calls.models import TranscriptSegment
    from calls.services import call_start
    from realtime.pipeline import CallEventPipeline

    def handle(pipeline: CallEventPipeline, event: dict) -> None:
        # As the server does around each unit of work (core.threads): the pooled connection goes back after it, so
        # 50 calls share DB_POOL_MAX_SIZE connections instead of each holding one for its whole life.
        try:
            pipeline.handle(event)
        finally:
            close_old_connections()

    def one_call(errors: list) -> None:
        try:
            call, _ = call_start(organization=org, channel="web")
            close_old_connections()
            pipeline = CallEventPipeline(call)
            for turn in range(turns):
                handle(
                    pipeline,
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": f"u{turn}",
                        "transcript": f"I need to move my appointment number {turn}",
                    },
                )
                handle(pipeline, {"type": "response.created", "response": {"id": f"r{turn}"}})
                handle(
                    pipeline,
                    {
                        "type": "response.output_audio_transcript.done",
                        "item_id": f"a{turn}",
                        "transcript": "Of course, which day works for you?",
                    },
                )
                handle(
                    pipeline,
                    {
                        "type": "response.done",
                        "response": {
                            "id": f"r{turn}",
                            "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
                        },
                    },
                )
        except Exception as exc:  # reported, not hidden
            errors.append(exc)
        finally:
            connection.close()

    before = TranscriptSegment.objects.count()
    errors: list = []
    threads = [threading.Thread(target=one_call, args=(errors,)) for _ in range(calls)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stored = TranscriptSegment.objects.count() - before
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed: {errors[0]!r}")
    return {"events": calls * turns * 4, "segments": stored, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mint-requests", type=int, default=200)
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (for bench/run_all.py)")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    _setup_django(database_url)
    from django.conf import settings

    from fakes.openai import FakeOpenAI

    org = _bench_clinic()
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    with FakeOpenAI.start_in_thread(api_key="sk-bench") as fake:
        mint = bench_minting(org, fake, requests=args.mint_requests)
    pipeline_rows = [(n, bench_pipeline(org, calls=n, turns=args.turns)) for n in args.calls]

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"\nmachine: {os.cpu_count()} cores, {cpu}; python {platform.python_version()}; database {engine}")
    print("\nSession minting (sequential, over loopback HTTP)")
    print("| path | requests | p50 ms | p99 ms | mean ms |\n|---|---|---|---|---|")
    for name, values in (
        ("POST /api/realtime/session (ours)", mint["ours"]),
        ("POST fake /realtime/client_secrets (direct)", mint["direct"]),
    ):
        print(
            f"| {name} | {len(values)} | {percentile(values, 50):.2f} | {percentile(values, 99):.2f} | "
            f"{statistics.fmean(values):.2f} |"
        )
    ratio = statistics.median(mint["ours"]) / statistics.median(mint["direct"])
    added = statistics.median(mint["ours"]) - statistics.median(mint["direct"])
    print(f"\nratio ours/direct (p50): {ratio:.2f}x; added by our endpoint: {added:.2f} ms")
    print("\nCall event pipeline (caller + agent utterance, response created/done per turn; segments persisted)")
    print("| concurrent calls | events | segments stored | seconds | events/s | segments/s |")
    print("|---|---|---|---|---|---|")
    for n, row in pipeline_rows:
        print(
            f"| {n} | {row['events']} | {row['segments']} | {row['seconds']:.2f} | "
            f"{row['events'] / row['seconds']:.0f} | {row['segments'] / row['seconds']:.0f} |"
        )
    if args.json:
        import json

        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": f"{os.cpu_count()} cores, {cpu}",
                    "database": engine,
                    "mint": {
                        "requests": len(mint["ours"]),
                        "ratio_p50": ratio,
                        "added_ms": added,
                        **{
                            f"{name}_{p}": percentile(mint[name], q)
                            for name in ("ours", "direct")
                            for p, q in (("p50", 50), ("p99", 99))
                        },
                    },
                    "pipeline": [
                        {
                            "calls": n,
                            **row,
                            "segments_per_s": row["segments"] / row["seconds"],
                            "events_per_s": row["events"] / row["seconds"],
                        }
                        for n, row in pipeline_rows
                    ],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
