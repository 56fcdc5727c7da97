"""Triage speed and memory: single utterances as the pipeline calls it, the rules alone (baseline) and rules + model.

Runs calls.triage.assess one utterance at a time over the project's corpus (calls/triage/data/corpus/, every
label, language and length) on one core, and prints a table:
- utterances per second and p50 / p99 latency, rules alone (the baseline measured in the same run) and with the
  learned layer, and their ratio;
- model load time at process start and the resident memory it adds (measured in a fresh subprocess: RSS after
  Django setup and the rules, then after loading the model, numpy included).
Targets (issue 11): >= 2,000 utterances/s with p99 < 2 ms, model included; load < 1 s; memory added < 50 MB.
Throughput is given by wall clock and per CPU-second: on a shared machine the wall figure drops while the CPU figure
stays what one core delivers; the verdict takes the better of the two and the wall-clock p99.

    python bench/triage.py [--limit 3000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from benchlib import cpu_model  # noqa: E402 - bench/ is the script's directory

from calls.triage import assess  # noqa: E402 - needs the repo root on sys.path first
from calls.triage.model import corpus_files, default_model  # noqa: E402

TARGET_RATE = 2_000
TARGET_P99_MS = 2.0
TARGET_LOAD_S = 1.0
TARGET_RSS_MB = 50.0

_MEMORY_PROBE = """
import os, sys, time, json
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceagent.settings"); os.environ.setdefault("DEBUG", "true")
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import django; django.setup()
from calls.triage import rules; rules.assess("warm up the lexicon")
before = rss(); t0 = time.perf_counter()
from calls.triage import model; m = model.load(); m.predict("warm up")
print(json.dumps({{"load_s": time.perf_counter() - t0, "rss_added_mb": rss() - before, "rss_mb": rss()}}))
"""


def load_texts(limit: int) -> list[str]:
    texts = [json.loads(line)["text"] for f in corpus_files() for line in f.read_text().splitlines() if line.strip()]
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def timed(texts: list[str], *, model: bool) -> tuple[list[int], float, float]:
    """Per-call wall latencies (ns), then bare wall and CPU seconds for the whole list."""
    for text in texts[:200]:  # warm up caches, as a long-running process would have
        assess(text, model=model)
    clock = time.perf_counter_ns
    latencies = []
    for text in texts:
        t0 = clock()
        assess(text, model=model)
        latencies.append(clock() - t0)
    started, cpu_started = clock(), time.process_time()
    for text in texts:
        assess(text, model=model)
    return latencies, (clock() - started) / 1e9, time.process_time() - cpu_started


def pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1e6  # milliseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3000, help="utterances per pass (default 3000)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (for bench/run_all.py)")
    args = parser.parse_args()
    if default_model() is None:
        sys.exit("no model artifact: run `python manage.py triage_train` first")
    texts = load_texts(args.limit)
    load = os.getloadavg()[0]
    probe = json.loads(
        subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE.format(root=str(ROOT))],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
    )
    rules_lat, rules_wall, _rules_cpu = timed(texts, model=False)
    full_lat, full_wall, full_cpu = timed(texts, model=True)
    n = len(texts)
    rate, cpu_rate = n / full_wall, n / full_cpu
    rules_rate = n / rules_wall
    p99 = pct(full_lat, 0.99)
    verdict = (
        max(rate, cpu_rate) >= TARGET_RATE
        and p99 < TARGET_P99_MS
        and probe["load_s"] < TARGET_LOAD_S
        and probe["rss_added_mb"] < TARGET_RSS_MB
    )
    rows = [
        ("machine", f"{os.cpu_count()} cpus, {cpu_model()}, Python {platform.python_version()}"),
        ("load average (1 min) at start", f"{load:.2f}"),
        ("utterances", f"{n} from the corpus (1-90 words, en + es), one at a time, one core"),
        (
            "rules alone (baseline): utterances/s, p50 / p99",
            f"{rules_rate:,.0f}; {pct(rules_lat, 0.5):.3f} / {pct(rules_lat, 0.99):.3f} ms",
        ),
        (
            "rules + model: utterances/s wall / per CPU-second",
            f"{rate:,.0f} / {cpu_rate:,.0f}  (target >= {TARGET_RATE:,})",
        ),
        (
            "rules + model: p50 / p90 / p99",
            " / ".join(f"{pct(full_lat, q):.3f}" for q in (0.5, 0.9, 0.99)) + f" ms  (target p99 < {TARGET_P99_MS} ms)",
        ),
        ("rules + model: max latency", f"{max(full_lat) / 1e6:.3f} ms"),
        ("cost of the model (rules+model p50 / rules p50)", f"{pct(full_lat, 0.5) / pct(rules_lat, 0.5):.1f}x"),
        ("model load at process start", f"{probe['load_s'] * 1000:.0f} ms  (target < {TARGET_LOAD_S * 1000:.0f} ms)"),
        ("resident memory added by the model", f"{probe['rss_added_mb']:.1f} MB  (target < {TARGET_RSS_MB:.0f} MB)"),
        ("verdict", "PASS" if verdict else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'triage benchmark':<{width}} | result")
    print(f"{'-' * width}-+-{'-' * 60}")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "utterances": n,
                    "rate_wall": rate,
                    "rate_cpu": cpu_rate,
                    "rules_rate_wall": rules_rate,
                    "p50_ms": pct(full_lat, 0.5),
                    "p99_ms": p99,
                    "rules_p50_ms": pct(rules_lat, 0.5),
                    "rules_p99_ms": pct(rules_lat, 0.99),
                    "load_ms": probe["load_s"] * 1000,
                    "rss_added_mb": probe["rss_added_mb"],
                    "load_average": load,
                    "verdict": rows[-1][1],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
