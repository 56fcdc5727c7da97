"""SIP vs media bridge: server CPU and memory per concurrent call, at the same N, in one run. See bench/README.md.

    python bench/sip.py                          # N = 20,50; 8 s measured per N
    python bench/sip.py --calls 50,100 --json out.json

SIP: the fake OpenAI (in this process, core 1) rings N calls at once and posts each signed `realtime.call.incoming`
to the server under test (uvicorn, core 0), which accepts it, attaches its sideband and runs the call event
pipeline while the fake's scripted callers talk (a turn every ~2 s, transcripts, responses, playback events; no
audio crosses our server). The media bridge at the same N is bench/bridge.py's run (its echoing fake on core 1):
50 μ-law frames a second each way per call through /twilio/media. Server CPU % of one core over the measured
window, RSS per call = (RSS under load - idle RSS) / N.

As upstream, the fake sends no `response.output_audio.delta` on a call's sideband (the audio goes over SIP media),
so the SIP figures are events only: transcripts, responses, tool calls and playback notices.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bridge  # bench/bridge.py: processes, clinic, the bridge's own run
from benchlib import cpu_model

ROOT = bridge.ROOT
SECRET = "whsec_YmVuY2gtb25seS13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5"  # noqa: S105 - a loopback benchmark's secret
LINES = [
    ("Hi, I'd like to book a routine check-up, please.", "Of course. May I have your name?"),
    ("It's for me, Maria Gonzalez.", "Thank you, Maria. What's a good callback number?"),
    ("You can reach me at 415 555 0123.", "Got it. Which days suit you best?"),
    ("Mornings are best.", "Mornings it is. Anything else I should note?"),
]


def long_call(turns: int) -> dict:
    """A routine caller who keeps talking (no tools, no escalation): the steady state of a live call."""
    return {
        "name": "bench_sip",
        "greeting": "Thank you for calling Bench Clinic. How can I help?",
        "turns": [
            {"caller": LINES[i % len(LINES)][0], "agent": LINES[i % len(LINES)][1], "delay": 1.5} for i in range(turns)
        ],
        "hangup_after": None,
    }


def run_sip(n: int, args, env: dict[str, str]) -> dict:
    from fakes.openai import FakeOpenAI
    from fakes.openai.scenarios import scenario_from_dict

    fake = FakeOpenAI.start_in_thread(time_scale=1.0, pace=0.5, api_key="sk-bench")
    server_env = {
        **env,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_WEBHOOK_SECRET": SECRET,
        "SECURE_SSL_REDIRECT": "false",
    }
    port = bridge.free_port()
    server = subprocess.Popen(
        bridge.pinned("0", bridge.server_argv("uvicorn", port)),
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    scenario = scenario_from_dict(long_call(int((args.warmup + args.duration) / 2) + 20))
    try:
        bridge.wait_port(port)
        url = f"http://127.0.0.1:{port}/openai/webhook"
        # One whole call first (accepted, a turn, hung up): what the first call loads once per process (the
        # openai SDK's webhook check, the sideband's modules, the clinic's prompt) is not a call's memory.
        warm_up = scenario_from_dict({**long_call(1), "hangup_after": 0.2})
        delivery = fake.run(
            fake.fake.place_sip_call(url, SECRET, to=bridge.CLINIC_NUMBER, scenario=warm_up), timeout=60
        )
        deadline = time.monotonic() + 30
        while fake.calls[delivery.call_id].state == "active" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        idle_rss = bridge.rss_kib(server.pid)

        async def ring_all():
            return await asyncio.gather(
                *(fake.fake.place_sip_call(url, SECRET, to=bridge.CLINIC_NUMBER, scenario=scenario) for _ in range(n))
            )

        deliveries = fake.run(ring_all(), timeout=120)
        accepted = sum(1 for d in deliveries if '"accepted"' in (d.answers[0] if d.answers else ""))
        time.sleep(max(1.0, n / 50) + args.warmup)
        cpu0, t0 = bridge.cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.duration)
        cpu1, t1 = bridge.cpu_seconds(server.pid), time.monotonic()
        rss = bridge.rss_kib(server.pid)
        live = sum(1 for d in deliveries if fake.calls[d.call_id].state == "active")
        events = sum(len(s.sent) for s in fake.sessions)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        fake.stop()
    return {
        "n": n,
        "accepted": accepted,
        "live_at_end": live,
        "cpu": (cpu1 - cpu0) / (t1 - t0) * 100,
        "rss_per_call": (rss - idle_rss) / n,
        "events_sent": events,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="20,50", help="comma list of concurrent calls N")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run (default 8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds ignored after the calls started")
    parser.add_argument("--json", help="write the figures here as JSON")
    args = parser.parse_args()
    args.verbose = False

    tmp = Path(tempfile.mkdtemp(prefix="bench-sip-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "PUBLIC_BASE_URL": bridge.PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": bridge.AUTH_TOKEN,
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789abcdef",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "OPENAI_API_KEY": "sk-bench",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    bridge.setup_django(env)
    org = bridge.prepare_clinic()
    fake_port = bridge.free_port()
    fake_code = (
        "import uvloop, sys; uvloop.install(); from fakes.openai.__main__ import main; "
        f"sys.exit(main(['--echo', '--port', '{fake_port}']))"
    )
    echo = subprocess.Popen(
        bridge.pinned("1", [sys.executable, "-c", fake_code]), cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    bridge_env = {**env, "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1"}
    bridge.wait_port(fake_port)
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}; load average {os.getloadavg()[0]:.1f} at start")
    print("server (uvicorn) on core 0; fakes and load on core 1; CPU % of one core; RSS KiB per call\n")
    print("|    N | SIP CPU % | SIP RSS/call | bridge CPU % | bridge RSS/call | CPU ratio bridge/SIP |")
    print("|---|---|---|---|---|---|")
    rows = []
    try:
        for n in (int(x) for x in args.calls.split(",")):
            sip = run_sip(n, args, env)
            br = bridge.run_one("uvicorn", n, args, org, bridge_env, bridge_env["OPENAI_BASE_URL"])
            row = {"n": n, "sip": sip, "bridge": {"cpu": br["cpu"], "rss_per_call": br["rss_per_call"]}}
            rows.append(row)
            ratio = br["cpu"] / sip["cpu"] if sip["cpu"] > 0 else float("inf")
            print(
                f"| {n:4} | {sip['cpu']:9.1f} | {sip['rss_per_call']:12.1f} | {br['cpu']:12.1f} "
                f"| {br['rss_per_call']:15.1f} | {ratio:20.1f} |  (SIP accepted {sip['accepted']}/{n}, "
                f"live at end {sip['live_at_end']})",
                flush=True,
            )
    finally:
        echo.send_signal(signal.SIGINT)
        echo.wait(5)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
