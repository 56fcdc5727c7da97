"""Run every benchmark in bench/ and write ONE table (markdown) to stdout and bench/results.md.

    make bench                                   # everything, ~10 min on 2 cores
    .venv/bin/python bench/run_all.py --quick    # smaller sizes, ~3 min: checks the pipeline, not for quoting

Each benchmark runs as its own process (each sets up Django against its own database) and hands its figures back as
JSON through `--json PATH`; nothing is scraped from printed text. The one exception is bench/bridge.py while it has
no --json flag: its markdown rows (a fixed format) are read instead. A benchmark that is missing prints
"not measured"; one that fails prints "failed" and the tail of its log.

Databases: bench/api.py DROPS and recreates BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/voiceagent_bench) and loads 10k then 1M calls; bench/realtime.py then runs its
pipeline in the same database (a large table, as in production). bench/home.py DROPS and recreates its own
BENCH_HOME_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/va_home_bench). bench/bridge.py uses its own
SQLite file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/voiceagent_bench"
NOT_MEASURED = "not measured"


@dataclass
class Bench:
    name: str
    script: str
    args: list[str]
    rows: Callable[[dict], list[tuple[str, str, str, str]]]  # JSON -> (area, measure, result, notes)
    env: dict[str, str]
    timeout: int = 1800


# --- JSON -> table rows -----------------------------------------------------------------------------------------------


def minting_rows(data: dict) -> list[tuple[str, str, str, str]]:
    m = data["mint"]
    notes = f"{m['requests']} sequential requests over loopback; daphne -> shipped fake OpenAI ({data['database']})"
    return [
        (
            "Session minting",
            "p50: ours / direct upstream (ratio)",
            f"{m['ours_p50']:.1f} / {m['direct_p50']:.1f} ms ({m['ratio_p50']:.1f}x, +{m['added_ms']:.1f} ms)",
            notes,
        ),
        ("Session minting", "p99: ours / direct upstream", f"{m['ours_p99']:.1f} / {m['direct_p99']:.1f} ms", ""),
    ]


def ingestion_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for row in data["pipeline"]:
        rows.append(
            (
                "Transcript ingestion",
                f"segments/s persisted, {row['calls']} concurrent calls",
                f"{row['segments_per_s']:,.0f} ({row['events_per_s']:,.0f} events/s)",
                f"{row['segments']} segments, call event pipeline, {data['database']}",
            )
        )
    return rows


def realtime_rows(data: dict) -> list[tuple[str, str, str, str]]:
    return minting_rows(data) + ingestion_rows(data)


def api_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for block in data["sizes"].values():
        for name, row in block["endpoints"].items():
            rows.append(
                (
                    f"API {name}",
                    f"{int(block['rows']):,} calls: p50 / p99, req/s (1 client / 8)",
                    f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms, {row['sequential_rps']:.0f} / "
                    f"{row['rps']:.0f} req/s",
                    "",
                )
            )
    sizes = list(data["sizes"].values())
    if len(sizes) >= 2:  # the claim under test: list cost does not grow with the table
        small, large = sizes[0], sizes[-1]
        for name in small["endpoints"]:
            ratio = large["endpoints"][name]["p50_ms"] / small["endpoints"][name]["p50_ms"]
            rows.append(
                (
                    f"API {name}",
                    f"p50 at {int(large['rows']):,} / p50 at {int(small['rows']):,} calls",
                    f"{ratio:.2f}x",
                    "1x = cost independent of table size",
                )
            )
    if rows:
        loads = ", ".join(f"{int(size):,} in {secs:.0f} s" for size, secs in data.get("load_seconds", {}).items())
        rows[0] = (*rows[0][:3], f"{data['server']}; PostgreSQL, COPY load: {loads}")
    return rows


def triage_rows(data: dict) -> list[tuple[str, str, str, str]]:
    return [
        (
            "Triage (rules + learned layer)",
            "utterances/s (wall / per CPU-second), p50 / p99",
            f"{data['rate_wall']:,.0f} / {data['rate_cpu']:,.0f}; {data['p50_ms']:.2f} / {data['p99_ms']:.2f} ms",
            f"{data['utterances']:,} corpus utterances, one at a time, one core; load average "
            f"{data['load_average']:.1f}; {data['verdict']} (target >= 2,000/s, p99 < 2 ms)",
        ),
        (
            "Triage (rules + learned layer)",
            "vs the rules alone (baseline, same run)",
            f"p50 {data['p50_ms'] / data['rules_p50_ms']:.1f}x ({data['rules_p50_ms']:.3f} ms alone), "
            f"{data['rules_rate_wall'] / data['rate_wall']:.1f}x fewer utterances/s",
            "the price of the learned layer",
        ),
        (
            "Triage model",
            "load at process start / resident memory added",
            f"{data['load_ms']:.0f} ms / {data['rss_added_mb']:.1f} MB",
            "target < 1 s / < 50 MB",
        ),
    ]


def caller_flood_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for mode, m in data["modes"].items():
        hostile = dict(m["hostile_answers"])
        per_batch = hostile.pop("tool_calls_per_batch", "?")
        answers = ", ".join(f"{count} x {status}" for status, count in sorted(hostile.items()))
        goal = "; the work's own cost, sharing one GIL" if mode == "raised" else "; goal within 1.5x"
        rows.append(
            (
                "Caller flood",
                f"staff GET /api/escalations p50 / p99: idle, one caller flooding /events {m['label']} (p50 ratio)",
                f"{m['idle_p50_ms']:.1f} / {m['idle_p99_ms']:.1f} ms, {m['flood_p50_ms']:.1f} / "
                f"{m['flood_p99_ms']:.1f} ms ({m['ratio_p50']:.2f}x)",
                f"one daphne process, {data['database']}; {per_batch} forwarded tool calls per batch ({answers}){goal}",
            )
        )
    return rows


def home_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for block in data["sizes"].values():
        pages = block["pages"]
        base = pages["call list (baseline)"]
        for name, row in pages.items():
            rows.append(
                (
                    f"Console {name}",
                    f"{int(block['calls']):,} calls in the clinic: p50 / p99, queries",
                    f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms ({row['p50_ms'] / base['p50_ms']:.2f}x the call "
                    f"list), {row['queries']} queries",
                    "",
                )
            )
    if rows:
        loads = ", ".join(f"{int(size):,} in {secs:.0f} s" for size, secs in data.get("load_seconds", {}).items())
        rows[0] = (*rows[0][:3], f"Django test client in process, DEBUG off; {data['database']}; COPY load: {loads}")
    return rows


BRIDGE_ROW = re.compile(
    r"^\|\s*(?P<server>\w+)\s*\|\s*(?P<n>\d+)\s*\|\s*[\d.]+\s*/\s*[\d.]+\s*\|\s*[\d.]+\s*/\s*[\d.]+\s*\|"
    r"\s*(?P<added_p50>-?[\d.]+)\s*\|\s*(?P<added_p99>-?[\d.]+)\s*\|\s*(?P<lost>\d+)\s*/\s*(?P<frames>\d+)\s*\|"
    r"\s*(?P<cpu>[\d.]+)\s*\|\s*(?P<rss_per_call>-?[\d.]+)\s*\|"
)


def sip_rows(data: dict) -> list[tuple[str, str, str, str]]:
    """bench/sip.py: SIP and the media bridge at the same N (uvicorn)."""
    out = []
    for row in data["rows"]:
        sip, br = row["sip"], row["bridge"]
        out.append(
            (
                f"SIP vs media bridge (N={row['n']})",
                "server CPU % of a core; RSS KiB per call",
                f"SIP {sip['cpu']:.1f} %, {sip['rss_per_call']:.0f} KiB; bridge {br['cpu']:.1f} %, "
                f"{br['rss_per_call']:.0f} KiB",
                f"SIP accepted {sip['accepted']}/{row['n']}; sideband events only (no audio reaches us over SIP)",
            )
        )
    return out


def bridge_from_stdout(text: str) -> dict:
    """bench/bridge.py's markdown rows (used only while it has no --json)."""
    rows = []
    for line in text.splitlines():
        match = BRIDGE_ROW.match(line)
        if match:
            row = {key: float(value) if key != "server" else value for key, value in match.groupdict().items()}
            rows.append(row)
    return {"rows": rows}


def bridge_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows_in = data["rows"] if isinstance(data, dict) else data
    out = []
    for server in dict.fromkeys(row["server"] for row in rows_in):
        runs = sorted((row for row in rows_in if row["server"] == server), key=lambda row: row["n"])
        held = [row for row in runs if row["added_p99"] < 20 and row["lost"] == 0]
        best = max(held, key=lambda row: row["n"]) if held else None
        detail = "; ".join(
            f"N={int(row['n'])}: +{row['added_p99']:.1f} ms, CPU {row['cpu']:.0f} %"
            + (f", lost {int(row['lost'])}" if row["lost"] else "")
            for row in runs
        )
        out.append(
            (
                f"Phone bridge ({server})",
                "concurrent calls held at added p99 < 20 ms, no frame lost",
                f"{int(best['n'])} calls (added p99 {best['added_p99']:.1f} ms)" if best else "none of the N tried",
                detail,
            )
        )
        top = runs[-1]
        out.append(
            (
                "Memory per concurrent call",
                f"{server}: RSS per call at N={int(top['n'])}",
                f"{top['rss_per_call']:.0f} KiB",
                "(server RSS under load - idle RSS) / N",
            )
        )
    return out


# --- running ----------------------------------------------------------------------------------------------------------


def supports_json(script: Path) -> bool:
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--json" in result.stdout


def run_one(bench: Bench, logs: Path) -> tuple[list[tuple[str, str, str, str]], float]:
    script = BENCH / bench.script
    if not script.exists():
        return [(bench.name, "", NOT_MEASURED, f"bench/{bench.script} is not there yet")], 0.0
    out = logs / f"{script.stem}.json"
    use_json = supports_json(script)
    argv = [sys.executable, str(script), *bench.args, *(["--json", str(out)] if use_json else [])]
    log_path = logs / f"{script.stem}.log"
    print(f"[bench] {bench.name}: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        try:
            result = subprocess.run(
                argv,
                cwd=ROOT,
                env={**os.environ, **bench.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=bench.timeout,
                check=False,
            )
            failed = result.returncode != 0
        except subprocess.TimeoutExpired:
            failed = True
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    if failed:
        print(f"[bench] {bench.name} FAILED; last lines of its output:\n{text[-3000:]}", file=sys.stderr)
        return [(bench.name, "", "failed", f"exit after {elapsed:.0f} s; see the output above")], elapsed
    try:
        data = json.loads(out.read_text()) if use_json else bridge_from_stdout(text)
        rows = bench.rows(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [(bench.name, "", "failed", f"unreadable results ({type(exc).__name__}: {exc})")], elapsed
    return rows or [(bench.name, "", NOT_MEASURED, "the benchmark produced no figures")], elapsed


def machine() -> str:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores, {cpu}, {system}, Python {platform.python_version()}"


def ensure_database(database_url: str) -> None:
    """Create the scratch database if it is missing (bench/api.py recreates it anyway; realtime.py alone needs it)."""
    try:
        import psycopg

        name = database_url.rsplit("/", 1)[-1]
        admin = re.sub(r"/[^/]*$", "/postgres", database_url)
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # the benchmark that needs it reports the failure
        print(f"[bench] could not prepare {database_url}: {type(exc).__name__}", file=sys.stderr)


def postgres_version(database_url: str) -> str:
    try:
        import psycopg

        admin = re.sub(r"/[^/]*$", "/postgres", database_url)
        with psycopg.connect(admin, connect_timeout=3) as conn:
            return "PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # reported in the header, not fatal
        return f"PostgreSQL unreachable ({type(exc).__name__})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs (not for quoting)")
    parser.add_argument(
        "--only", default="", help="comma list of names to run: triage,api,realtime,home,caller_flood,bridge,sip"
    )
    parser.add_argument("--output", default=str(BENCH / "results.md"), help="where to write the table")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    quick = args.quick
    benches = {
        "triage": Bench("Triage", "triage.py", ["--limit", "1000" if quick else "3000"], triage_rows, {}),
        "api": Bench(
            "API list/detail",
            "api.py",
            [
                "--sizes",
                "10000,100000" if quick else "10000,1000000",
                "--requests",
                "100" if quick else "300",
                "--seconds",
                "2" if quick else "5",
            ],
            api_rows,
            {"BENCH_DATABASE_URL": database_url},
        ),
        "realtime": Bench(
            "Session minting and transcript ingestion",
            "realtime.py",
            ["--mint-requests", "50" if quick else "200", "--calls", "1", "10", "50"],
            realtime_rows,
            {"DATABASE_URL": database_url},
        ),
        "home": Bench(
            "Clinic home page",
            "home.py",
            ["--calls", "10000,100000" if quick else "10000,1000000", "--requests", "10" if quick else "30"],
            home_rows,
            {"BENCH_HOME_DATABASE_URL": os.environ.get("BENCH_HOME_DATABASE_URL", "")}
            if os.environ.get("BENCH_HOME_DATABASE_URL")
            else {},
        ),
        "caller_flood": Bench(
            "Caller flood",
            "caller_flood.py",
            ["--requests", "50" if quick else "100", "--flood-seconds", "8" if quick else "20"],
            caller_flood_rows,
            {},
        ),
        "bridge": Bench(
            "Phone bridge",
            "bridge.py",
            [
                "--servers",
                "uvicorn",
                "--calls",
                "50,100" if quick else "50,100,150,200",
                "--duration",
                "4" if quick else "8",
                "--warmup",
                "2",
            ],
            bridge_rows,
            {},
        ),
        "sip": Bench(
            "SIP vs media bridge",
            "sip.py",
            ["--calls", "20" if quick else "20,50", "--duration", "4" if quick else "8"],
            sip_rows,
            {},
        ),
    }
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(benches)
    ensure_database(database_url)
    load = os.getloadavg()[0]
    logs = Path(tempfile.mkdtemp(prefix="bench-run-all-"))
    table: list[tuple[str, str, str, str]] = []
    timings = []
    for name in chosen:
        rows, elapsed = run_one(benches[name], logs)
        table += rows
        timings.append(f"{name} {elapsed:.0f} s")

    header = [
        "# voiceagent benchmarks",
        "",
        f"- machine: {machine()}",
        f"- database: {postgres_version(database_url)} (API, ingestion); run "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC{' with --quick (not for quoting)' if quick else ''}",
        f"- load average (1 min) at start: {load:.2f}"
        + (" (other processes share these cores: figures are pessimistic)" if load > 0.5 else ""),
        f"- wall time per benchmark: {', '.join(timings)}",
        "",
        "| area | measure | result | notes |",
        "|---|---|---|---|",
    ]
    lines = header + [f"| {area} | {measure} | {result} | {notes} |" for area, measure, result, notes in table]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text)
    print(f"(written to {args.output}; raw outputs in {logs})", file=sys.stderr)
    return 1 if any(result == "failed" for _a, _m, result, _n in table) else 0


if __name__ == "__main__":
    sys.exit(main())
