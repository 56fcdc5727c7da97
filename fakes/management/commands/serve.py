"""`manage.py serve`: run the ASGI server (daphne) the way `make run` does, and say where to log in.

Next to the server it runs the two workers a deployment needs, as child processes stopped with it: the notification
worker (`deliver_notifications`: retries board pushes and webhooks, one delivery loop only) and the reaper
(`reap_calls --every 30`: ends calls whose process died). `--no-workers` skips them (when they run elsewhere).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKERS: tuple[tuple[str, ...], ...] = (("deliver_notifications",), ("reap_calls", "--every", "30"))


def _die_with_parent() -> None:
    """In the child, before exec (Linux): a SIGKILLed server must not leave its workers running."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_workers(openai_env: dict[str, str] | None = None) -> list[subprocess.Popen[bytes]]:
    """Start the workers as children of this process; they inherit its environment (and so its settings).
    `openai_env` goes to the notification worker only: it makes the post-call summaries, so under `make run` it
    must reach the built-in fake OpenAI this process runs (and dies with it)."""
    manage = Path(settings.BASE_DIR) / "manage.py"
    preexec = _die_with_parent if sys.platform == "linux" else None
    return [
        subprocess.Popen(  # noqa: S603 (our own argv)
            [sys.executable, str(manage), *worker],
            preexec_fn=preexec,
            env={**os.environ, **openai_env} if openai_env and worker[0] == "deliver_notifications" else None,
        )
        for worker in WORKERS
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM (each worker finishes its pass and exits), then SIGKILL whatever is still running after `timeout`."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout)


class Command(BaseCommand):
    help = "Serve voiceagent with daphne (and its notification worker and reaper) and print the console URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-workers",
            action="store_true",
            help="Do not start deliver_notifications and reap_calls beside the server (they run elsewhere).",
        )

    def handle(self, *args: Any, host: str, port: int, no_workers: bool = False, **options: Any) -> None:
        # daphne with request bodies bounded while they arrive (stock daphne reads a whole body first).
        from core.daphne_server import BoundedCommandLineInterface

        # Ctrl-C must stop the server: a process started in the background by a non-interactive shell (a CI job,
        # `make run &`) inherits SIGINT as ignored, and then neither Python nor Twisted would ever see it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        base = f"http://{host}:{port}"
        openai_env: dict[str, str] = {}
        if not settings.OPENAI_API_KEY:
            # No key: the built-in fake OpenAI (scripted caller) so every flow works on a machine with no internet.
            from fakes.openai import FakeOpenAI

            fake = FakeOpenAI.start_in_thread(scenario="routine_booking", time_scale=1.0)
            settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, "sk-local-fake"
            # Only the notification worker calls OpenAI (post-call summaries); the reaper gets nothing of the fake.
            openai_env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-local-fake"}
            self.stdout.write(f"no OPENAI_API_KEY: using the built-in fake OpenAI at {fake.base_url}")
        workers = [] if no_workers else start_workers(openai_env)
        atexit.register(stop_workers, workers)
        try:
            self.stdout.write(self.style.SUCCESS(f"voiceagent console: {base}/admin/"))
            self.stdout.write(f"browser call demo: {base}/demo/call/   API docs: {base}/api/docs/")
            engine = str(settings.DATABASES["default"]["ENGINE"])
            channel_layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])  # typed from settings.py's literal
            self.stdout.write(
                f"database: {engine.rsplit('.', 1)[-1]}, channel layer: {channel_layer.rsplit('.', 1)[-1]}"
            )
            self.stdout.write(
                "workers: none (--no-workers)"
                if no_workers
                else "workers: deliver_notifications, reap_calls --every 30 (stopped with the server)"
            )
            self.stdout.flush()
            # -v 0: no daphne access log. It would print full URLs with query strings (search terms can be patient
            # data); our own request line (core/observability.py) logs method, path, status and request id instead.
            BoundedCommandLineInterface().run(
                ["-b", host, "-p", str(port), "-v", "0", "--http-timeout", "30", "voiceagent.asgi:application"]
            )
        finally:
            stop_workers(workers)
