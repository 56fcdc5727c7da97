"""Triage throughput and latency: utterances assessed per second on one core, and per-utterance latency percentiles.

Runs calls.triage.assess over a labelled dev set (DEV below, when one sits beside the checkout; otherwise the
project's own cases in calls/tests/triage_cases/) repeated N times, single-threaded, and prints a table.
Target: >= 20,000 utterances/s with p99 < 1 ms, so triage never delays a call. Throughput is given both by wall
clock and per CPU-second: on a shared machine (other processes on the same cores) the wall figure drops while the CPU
figure stays what one core actually delivers; the verdict takes the better of the two and the wall-clock p99.

    python bench/triage.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import cpu_model  # noqa: E402 - bench/ is the script's directory

from calls.triage import assess, assess_agent  # noqa: E402 - needs the repo root on sys.path first

DEV = ROOT.parent / "shared" / "triage" / "dev.jsonl"
OWN = ROOT / "calls" / "tests" / "triage_cases"
TARGET_RATE = 20_000
TARGET_P99_MS = 1.0


def load_texts() -> tuple[str, list[str]]:
    files = [DEV] if DEV.exists() else sorted(OWN.glob("*.jsonl"))
    texts = [json.loads(line)["text"] for f in files for line in f.read_text().splitlines() if line.strip()]
    return ", ".join(str(f.relative_to(ROOT.parent)) for f in files), texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="how many times to run the whole set (default 50)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (for bench/run_all.py)")
    args = parser.parse_args()
    source, texts = load_texts()
    load = os.getloadavg()[0]
    workload = texts * args.repeat

    for text in texts:  # warm up: compile the lexicon and fill caches, as a long-running worker would have
        assess(text)

    # Wall clock per call (what a caller would wait) and CPU time per call (what one core spends, unaffected by
    # other processes sharing the machine).
    latencies, cpu_latencies = [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    started = clock()
    for text in workload:
        t0, c0 = clock(), cpu_clock()
        assess(text)
        cpu_latencies.append(cpu_clock() - c0)
        latencies.append(clock() - t0)
    wall = (clock() - started) / 1e9

    # Throughput without the per-call timers.
    started, cpu_started = clock(), time.process_time()
    for text in workload:
        assess(text)
    bare, bare_cpu = (clock() - started) / 1e9, time.process_time() - cpu_started

    agent_started = clock()
    for text in workload:
        assess_agent(text)
    agent_wall = (clock() - agent_started) / 1e9

    n = len(latencies)

    def pct(values: list[int], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(n - 1, int(p * n))] / 1e3  # microseconds

    rate, cpu_rate = n / bare, n / bare_cpu
    p99_ms = pct(latencies, 0.99) / 1e3
    rows = [
        ("source", source),
        ("machine", f"{os.cpu_count()} cpus, {cpu_model()}, Python {platform.python_version()}"),
        ("load average (1 min) at start", f"{load:.2f}"),
        ("utterances", f"{len(texts)} x {args.repeat} = {n}"),
        ("assess: utterances/s, wall clock", f"{rate:,.0f}  (target >= {TARGET_RATE:,})"),
        ("assess: utterances/s, per CPU-second", f"{cpu_rate:,.0f}"),
        ("assess: mean latency, wall", f"{statistics.fmean(latencies) / 1e3:.1f} us"),
        ("assess: p50 / p90 / p99, wall", " / ".join(f"{pct(latencies, q):.1f}" for q in (0.5, 0.9, 0.99)) + " us"),
        ("assess: p50 / p90 / p99, CPU", " / ".join(f"{pct(cpu_latencies, q):.1f}" for q in (0.5, 0.9, 0.99)) + " us"),
        ("assess: max latency, wall", f"{max(latencies) / 1e6:.3f} ms"),
        ("assess_agent: utterances/s, wall", f"{n / agent_wall:,.0f}"),
        ("timed loop wall time", f"{wall:.2f} s"),
        ("verdict", "PASS" if max(rate, cpu_rate) >= TARGET_RATE and p99_ms < TARGET_P99_MS else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'triage benchmark':<{width}} | result")
    print(f"{'-' * width}-+-{'-' * 50}")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "utterances": n,
                    "rate_wall": rate,
                    "rate_cpu": cpu_rate,
                    "p50_us": pct(latencies, 0.5),
                    "p99_us": pct(latencies, 0.99),
                    "p99_cpu_us": pct(cpu_latencies, 0.99),
                    "load_average": load,
                    "verdict": rows[-1][1],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
