"""Phone bridge benchmark: N concurrent simulated Twilio calls through the real /twilio/media consumer to the fake
OpenAI in echo mode, under daphne and under uvicorn. See bench/README.md.

    python bench/bridge.py                         # both servers, N = 50,100,150,200,250,300, 10 s per run
    python bench/bridge.py --servers uvicorn --calls 100,250 --duration 15

Per server and N: the server alone on core 0 (taskset -c 0), this load generator and the echoing fake on core 1.
Every call is a real phone call to the bridge: signed upgrade, `start` with a one-time stream token issued for a real
call row, session.update + greeting upstream, then 20 ms μ-law frames at 50 frames/s each way with Twilio marks
echoed at once. Each frame carries its call and sequence number in its first bytes, so its echo is timed exactly.
The same N clients then talk straight to the fake (input_audio_buffer.append -> output_audio.delta) for the
baseline; "added" = bridge round trip minus direct round trip, percentile by percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import cpu_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PUBLIC_BASE_URL = "https://bench.voice.example"
AUTH_TOKEN = "bench-twilio-auth-token"  # noqa: S105 - a fake credential for a loopback benchmark
CLINIC_NUMBER = "+14155550100"
FRAME_BYTES = 160
FRAME_SECONDS = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")
clock = time.perf_counter  # uvloop's loop.time() ticks in whole milliseconds: too coarse for round trips


# --- processes ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: str, argv: list[str]) -> list[str]:
    return (["taskset", "-c", core] if shutil.which("taskset") else []) + argv


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def server_argv(kind: str, port: int) -> list[str]:
    if kind == "daphne":
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-v",
            "0",
            "voiceagent.asgi:application",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "voiceagent.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws",
        "websockets-sansio",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- calls ----------------------------------------------------------------------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
    import django

    django.setup()


def prepare_clinic():
    from django.core.management import call_command

    from organizations.models import BusinessHours, TwilioNumber
    from organizations.services import organization_create

    call_command("migrate", verbosity=0)
    org = organization_create(
        name="Bench Clinic",
        slug="bench-clinic",
        escalation_phone="+14155550111",  # a number the dialling rules accept (555-01xx is reserved)
        agent_greeting="Thank you for calling Bench Clinic. How can I help?",
    )
    for weekday in range(7):
        BusinessHours.objects.create(organization=org, weekday=weekday, opens="00:00", closes="00:00")
    TwilioNumber.objects.create(organization=org, number=CLINIC_NUMBER)
    return org


def issue_calls(org, n: int) -> list[tuple[str, str]]:
    """N live phone calls, each with a fresh one-time stream token (what /twilio/voice would put in the TwiML)."""
    import uuid

    from calls.models import Call
    from calls.services import call_start
    from realtime.telephony.services import stream_token_issue

    out = []
    for _ in range(n):
        call, _ = call_start(
            organization=org,
            channel=Call.Channel.PHONE,
            caller_phone="+15555550199",
            twilio_call_sid="CA" + uuid.uuid4().hex,
            metadata={"twilio": {"number": CLINIC_NUMBER, "mode": "open"}},
        )
        out.append((str(call.pk), stream_token_issue(call)))
    return out


# --- load -----------------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    sent: list[float] = field(default_factory=list)  # send times inside the window
    rtts: list[float] = field(default_factory=list)  # seconds, for frames sent inside the window
    lost: int = 0
    series: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the window, round trip)
    first_echo: dict[int, float] = field(default_factory=dict)


def frame_payload(call_index: int, seq: int) -> str:
    # The first 6 bytes (8 base64 chars) name the frame; the rest is μ-law silence.
    return base64.b64encode(struct.pack(">HI", call_index, seq) + b"\xff" * (FRAME_BYTES - 6)).decode()


async def run_client(
    kind: str,
    url: str,
    index: int,
    headers: dict,
    first: list[str],
    window: tuple[float, float],
    stop_at: float,
    stats: Stats,
    ready: asyncio.Event,
    start_delay: float,
) -> None:
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    pending: dict[str, float] = {}
    w0, w1 = window
    async with connect(
        url, additional_headers=headers, compression=None, max_size=None, open_timeout=30, ping_interval=None
    ) as ws:
        for message in first:
            await ws.send(message)
        ready.set()

        async def receive() -> None:
            key_marker = '"payload":"' if kind == "bridge" else '"delta":"'
            with contextlib.suppress(Exception):
                async for raw in ws:
                    at = clock()
                    i = raw.find(key_marker)
                    if i != -1:
                        i += len(key_marker)
                        sent = pending.pop(raw[i : i + 8], None)
                        if sent is not None and w0 <= sent < w1:
                            stats.rtts.append(at - sent)
                            stats.series.append((sent - w0, at - sent))
                        elif sent is not None and stats.first_echo.get(index) is None:
                            stats.first_echo[index] = at
                    elif '"event":"mark"' in raw:  # Twilio echoes a mark once the audio before it played
                        await ws.send(raw)

        receiver = asyncio.ensure_future(receive())
        await asyncio.sleep(start_delay)
        begin = loop.time()
        begin_clock = clock()
        seq = 0
        if kind == "bridge":
            head = (
                '{"event":"media","sequenceNumber":"1","streamSid":"MZbench","media":{"track":"inbound",'
                '"chunk":"1","timestamp":"0","payload":"'
            )
            tail = '"}}'
        else:
            head, tail = '{"type":"input_audio_buffer.append","audio":"', '"}'
        while True:
            due = begin + seq * FRAME_SECONDS
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            if begin_clock + seq * FRAME_SECONDS >= stop_at:
                break
            payload = frame_payload(index, seq)
            sent_at = clock()
            pending[payload[:8]] = sent_at
            if w0 <= sent_at < w1:
                stats.sent.append(sent_at)
            try:
                await ws.send(head + payload + tail)
            except Exception:
                break
            seq += 1
        await asyncio.sleep(1.0)  # grace for the last echoes
        if kind == "bridge":
            with contextlib.suppress(Exception):
                await ws.send('{"event":"stop","sequenceNumber":"9","streamSid":"MZbench","stop":{}}')
        receiver.cancel()
        stats.lost += sum(1 for t in pending.values() if w0 <= t < w1)


async def run_load(
    kind: str, url: str, n: int, headers: dict, firsts: list[list[str]], warmup: float, duration: float
) -> Stats:
    stats = Stats()
    ramp = max(1.0, n / 100)  # spread connects (each one sets up a real call on the server)
    start = clock() + ramp + 0.5
    window = (start + warmup, start + warmup + duration)
    stop_at = window[1]
    tasks = []
    readies = []
    for i in range(n):
        ready = asyncio.Event()
        readies.append(ready)
        # Spread the frame phase of the calls evenly over 20 ms, like independent callers.
        delay = max(0.0, start - clock()) + (i % 20) * FRAME_SECONDS / 20
        tasks.append(
            asyncio.ensure_future(run_client(kind, url, i, headers, firsts[i], window, stop_at, stats, ready, delay))
        )
        await asyncio.sleep(ramp / n)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"  {len(errors)} client(s) failed: {type(errors[0]).__name__}: {errors[0]}", file=sys.stderr)
        stats.lost += sum(1 for _ in errors) * int(duration / FRAME_SECONDS)
    return stats


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


# --- one run ----------------------------------------------------------------------------------------------------------


def run_one(kind: str, n: int, args, org, env: dict[str, str], fake_url: str) -> dict:
    from twilio.request_validator import RequestValidator

    port = free_port()
    server = subprocess.Popen(
        pinned("0", server_argv(kind, port)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_port(port)
        time.sleep(0.5)
        idle_rss = rss_kib(server.pid)
        calls = issue_calls(org, n)
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC_BASE_URL.replace("https", "wss") + "/twilio/media", {}
        )
        firsts = [
            [
                '{"event":"connected","protocol":"Call","version":"1.0.0"}',
                '{"event":"start","sequenceNumber":"1","streamSid":"MZbench","start":{"streamSid":"MZbench",'
                '"accountSid":"AC00000000000000000000000000000000","callSid":"CAbench","tracks":["inbound"],'
                f'"customParameters":{{"call_id":"{call_id}","stream_token":"{token}"}},'
                '"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}',
            ]
            for call_id, token in calls
        ]

        async def measure_bridge():
            loop = asyncio.get_running_loop()
            sample = {}

            async def sampler():
                ramp = max(1.0, n / 100) + 0.5
                await asyncio.sleep(ramp + args.warmup)
                sample["cpu0"], sample["t0"] = cpu_seconds(server.pid), loop.time()
                await asyncio.sleep(args.duration)
                sample["cpu1"], sample["t1"] = cpu_seconds(server.pid), loop.time()
                sample["rss"] = rss_kib(server.pid)

            probe = asyncio.ensure_future(sampler())
            stats = await run_load(
                "bridge",
                f"ws://127.0.0.1:{port}/twilio/media",
                n,
                {"X-Twilio-Signature": signature},
                firsts,
                args.warmup,
                args.duration,
            )
            await probe
            return stats, sample

        gc.collect()
        gc.freeze()
        gc.disable()  # the generator's own collections would add pauses to both round trips
        try:
            bridge_stats, sample = asyncio.run(measure_bridge())
            direct = asyncio.run(
                run_load(
                    "direct",
                    fake_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime-2.1",
                    n,
                    {"Authorization": "Bearer sk-bench"},
                    [[] for _ in range(n)],
                    args.warmup,
                    args.duration,
                )
            )
        finally:
            gc.enable()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    cpu = (sample["cpu1"] - sample["cpu0"]) / (sample["t1"] - sample["t0"]) * 100
    row = {
        "server": kind,
        "n": n,
        "direct_p50": pct(direct.rtts, 50),
        "direct_p99": pct(direct.rtts, 99),
        "bridge_p50": pct(bridge_stats.rtts, 50),
        "bridge_p99": pct(bridge_stats.rtts, 99),
        "lost": bridge_stats.lost,
        "frames": len(bridge_stats.sent),
        "cpu": cpu,
        "rss_per_call": (sample["rss"] - idle_rss) / n,
    }
    if args.verbose:
        for second in range(int(args.duration)):
            chunk = [rtt for at, rtt in bridge_stats.series if second <= at < second + 1]
            print(f"  bridge second {second}: p50 {pct(chunk, 50):.2f} p99 {pct(chunk, 99):.2f} ms", file=sys.stderr)
    row["added_p50"] = row["bridge_p50"] - row["direct_p50"]
    row["added_p99"] = row["bridge_p99"] - row["direct_p99"]
    return row


def print_row(row: dict) -> None:
    holds = "yes" if row["added_p99"] < 20 and row["lost"] == 0 else "no"
    print(
        f"| {row['server']:7} | {row['n']:4} | {row['direct_p50']:6.2f} / {row['direct_p99']:6.2f} "
        f"| {row['bridge_p50']:6.2f} / {row['bridge_p99']:7.2f} | {row['added_p50']:6.2f} | {row['added_p99']:7.2f} "
        f"| {row['lost']:4} / {row['frames']:6} | {row['cpu']:5.1f} | {row['rss_per_call']:6.1f} | {holds:5} |",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="daphne,uvicorn", help="comma list of daphne, uvicorn")
    parser.add_argument("--calls", default="50,100,150,200,250,300", help="comma list of concurrent calls N")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds ignored after the ramp (default 2)")
    parser.add_argument("--verbose", action="store_true", help="print the bridge's round trips second by second")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789abcdef",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "OPENAI_API_KEY": "sk-bench",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)  # the bridge needs no channel layer
    fake_port = free_port()
    fake_code = (
        "import uvloop, sys; uvloop.install(); from fakes.openai.__main__ import main; "
        f"sys.exit(main(['--echo', '--port', '{fake_port}']))"
    )
    fake = subprocess.Popen(
        pinned("1", [sys.executable, "-c", fake_code]),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{fake_port}/v1"
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})  # the load generator shares core 1 with the fake
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    setup_django(env)
    org = prepare_clinic()
    wait_port(fake_port)

    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}; "
        f"{args.duration:g} s measured per run after {args.warmup:g} s warm-up"
    )
    print("server on core 0; load generator + fake OpenAI (echo) on core 1. Latencies in ms.")
    load = os.getloadavg()[0]
    if load > 0.5:
        print(
            f"WARNING: load average {load:.1f} before the bench: other processes share these cores and the "
            "figures below measure them too."
        )
    print()
    print(
        "| server  |    N | direct p50 / p99 | bridge p50 / p99 | added p50 | added p99 | lost / frames "
        "| CPU % | RSS KiB/call | holds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for kind in args.servers.split(","):
            for n in (int(x) for x in args.calls.split(",")):
                print_row(run_one(kind.strip(), n, args, org, env, env["OPENAI_BASE_URL"]))
    finally:
        fake.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            fake.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nholds: added p99 < 20 ms and no frame lost. Size on CPU (<= 85 % of the core), not on the last N held.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
