"""`manage.py fake_openai`: run the fake OpenAI Realtime server (what `make run` uses when OPENAI_API_KEY is unset)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fakes.openai.__main__ import build_parser, serve
from fakes.openai.scenarios import list_scenarios


class Command(BaseCommand):
    help = "Run the fake OpenAI Realtime GA server on loopback and print its base URL (set OPENAI_BASE_URL to it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=0, help="0 picks a free port; the URL is printed")
        parser.add_argument("--scenario", help="shipped scenario name or YAML path played by every session")
        parser.add_argument("--api-key", help="the only standard key accepted (default: any non-ek_ key)")
        parser.add_argument("--time-scale", type=float, default=1.0)
        parser.add_argument("--echo", action="store_true", help="benchmark mode: echo appended audio")
        parser.add_argument("--failure", help='JSON failure mode, e.g. \'{"kind": "rate_limit"}\'')
        parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for scenario in list_scenarios():
                summary = scenario.description.splitlines()[0] if scenario.description else ""
                self.stdout.write(f"{scenario.name:24} {summary}")
            return
        argv = ["--host", options["host"], "--port", str(options["port"]), "--time-scale", str(options["time_scale"])]
        for flag in ("scenario", "api_key", "failure"):
            if options[flag]:
                argv += ["--" + flag.replace("_", "-"), options[flag]]
        if options["echo"]:
            argv.append("--echo")
        asyncio.run(serve(build_parser().parse_args(argv)))
