"""`manage.py serve`: run the ASGI server (daphne) the way `make run` does, and say where to log in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve voiceagent with daphne and print the console URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        from daphne.cli import CommandLineInterface

        base = f"http://{host}:{port}"
        if not settings.OPENAI_API_KEY:
            # No key: the built-in fake OpenAI (scripted caller) so every flow works on a machine with no internet.
            from fakes.openai import FakeOpenAI

            fake = FakeOpenAI.start_in_thread(scenario="routine_booking", time_scale=1.0)
            settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, "sk-local-fake"
            self.stdout.write(f"no OPENAI_API_KEY: using the built-in fake OpenAI at {fake.base_url}")
        self.stdout.write(self.style.SUCCESS(f"voiceagent console: {base}/admin/"))
        self.stdout.write(f"browser call demo: {base}/demo/call/   API docs: {base}/api/docs/")
        engine = str(settings.DATABASES["default"]["ENGINE"])
        channel_layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])  # typed from settings.py's literal dict
        self.stdout.write(f"database: {engine.rsplit('.', 1)[-1]}, channel layer: {channel_layer.rsplit('.', 1)[-1]}")
        self.stdout.flush()
        # -v 0: no daphne access log. It would print full URLs with query strings (search terms can be patient data);
        # our own request line (core/observability.py) logs method, path, status and request id instead.
        CommandLineInterface().run(
            ["-b", host, "-p", str(port), "-v", "0", "--http-timeout", "30", "voiceagent.asgi:application"]
        )
