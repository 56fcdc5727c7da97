"""`python -m fakes.openai --port 0`: run the fake and print where it listens (first line of stdout)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from .scenarios import list_scenarios
from .server import Failure, FakeOpenAI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fakes.openai", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one; it is printed)")
    parser.add_argument("--scenario", help="scripted caller for every session: a shipped name or a YAML path")
    parser.add_argument("--api-key", help="the only standard key accepted (default: any non-ek_ bearer token)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply scripted delays (default 1.0)")
    parser.add_argument("--echo", action="store_true", help="benchmark mode: echo appended audio as output audio")
    parser.add_argument("--failure", help='JSON failure mode, e.g. \'{"kind": "server_error"}\'')
    parser.add_argument(
        "--today",
        help="the fake's date, YYYY-MM-DD (default: env FAKE_OPENAI_TODAY, else today): past a model's "
        "shutdown date it is refused",
    )
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    return parser


async def serve(args: argparse.Namespace) -> None:
    failure = Failure.from_dict(json.loads(args.failure)) if args.failure else None
    fake = FakeOpenAI(
        scenario=args.scenario,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        time_scale=args.time_scale,
        echo=args.echo,
        failure=failure,
        today=args.today,
    )
    async with fake:
        print(f"fake OpenAI listening on {fake.base_url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for scenario in list_scenarios():
            print(f"{scenario.name:24} {scenario.description.splitlines()[0] if scenario.description else ''}")
        return 0
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
