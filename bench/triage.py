"""Triage throughput and latency: utterances assessed per second on one core, and per-utterance latency percentiles.

Runs calls.triage.assess over the labelled dev set (../shared/triage/dev.jsonl beside the checkout, falling back to
the project's own cases in calls/tests/triage_cases/) repeated N times, single-threaded, and prints a table.
Target: >= 20,000 utterances/s with p99 < 1 ms, so triage never delays a call.

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

from calls.triage import assess, assess_agent  # noqa: E402 - needs the repo root on sys.path first

DEV = ROOT.parent / "shared" / "triage" / "dev.jsonl"
OWN = ROOT / "calls" / "tests" / "triage_cases"
TARGET_RATE = 20_000
TARGET_P99_MS = 1.0


def load_texts() -> tuple[str, list[str]]:
    files = [DEV] if DEV.exists() else sorted(OWN.glob("*.jsonl"))
    texts = [json.loads(line)["text"] for f in files for line in f.read_text().splitlines() if line.strip()]
    return ", ".join(str(f.relative_to(ROOT.parent)) for f in files), texts


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="how many times to run the whole set (default 50)")
    args = parser.parse_args()
    source, texts = load_texts()
    workload = texts * args.repeat

    for text in texts:  # warm up: compile the lexicon and fill caches, as a long-running worker would have
        assess(text)

    latencies = []
    clock = time.perf_counter_ns
    started = clock()
    for text in workload:
        t0 = clock()
        assess(text)
        latencies.append(clock() - t0)
    wall = (clock() - started) / 1e9

    # Throughput without the per-call timer overhead.
    started = clock()
    for text in workload:
        assess(text)
    bare = (clock() - started) / 1e9

    agent_started = clock()
    for text in workload:
        assess_agent(text)
    agent_wall = (clock() - agent_started) / 1e9

    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] / 1e6

    rate = n / bare
    rows = [
        ("source", source),
        ("machine", f"{os.cpu_count()} cpus, {cpu_model()}, Python {platform.python_version()}"),
        ("utterances", f"{len(texts)} x {args.repeat} = {n}"),
        ("assess: utterances/s (1 core)", f"{rate:,.0f}  (target >= {TARGET_RATE:,})"),
        ("assess: mean latency", f"{statistics.fmean(latencies) / 1e3:.1f} us"),
        ("assess: p50 / p90 / p99 latency", " / ".join(f"{pct(q) * 1e3:.1f}" for q in (0.5, 0.9, 0.99)) + " us"),
        ("assess: max latency", f"{latencies[-1] / 1e6:.3f} ms"),
        ("assess_agent: utterances/s", f"{n / agent_wall:,.0f}"),
        ("timed loop wall time", f"{wall:.2f} s"),
        ("verdict", "PASS" if rate >= TARGET_RATE and pct(0.99) < TARGET_P99_MS else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'triage benchmark':<{width}} | result")
    print(f"{'-' * width}-+-{'-' * 50}")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")


if __name__ == "__main__":
    main()
