"""docs/integration.md's "From zero to a listed call" works as written: its shell lines run in order, as pasted,
against a live server on a real socket (uvicorn in a thread, seeded like `make run`), and each answer matches the
one the guide shows."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from calls.models import Call
from calls.tests.test_board_browser import LiveServer

GUIDE = Path(django_settings.BASE_DIR) / "docs" / "integration.md"
SECTION = "## From zero to a listed call"
DOC_BASE = "http://127.0.0.1:8000"
MARK = "@@answer-of-step@@"

pytestmark = [pytest.mark.django_db(transaction=True)]


def walkthrough() -> list[tuple[str, Any]]:
    """The section's ```sh blocks, each with the ```json answer that follows it (None when there is none)."""
    text = GUIDE.read_text()
    start = text.index(SECTION)
    section = text[start : text.index("\n## ", start + len(SECTION))]
    blocks = re.findall(r"```(sh|json)\n(.*?)```", section, flags=re.DOTALL)
    steps: list[tuple[str, Any]] = []
    for kind, body in blocks:
        if kind == "sh":
            steps.append((body, None))
        else:
            assert steps and steps[-1][1] is None, "an answer block must follow a command block"
            steps[-1] = (steps[-1][0], json.loads(body))
    return steps


def matches(shown: Any, actual: Any, where: str = "answer") -> None:
    """What the guide shows is in the answer: every key shown, equal values; a string with "…" stands for any
    value, and a list shows the answer's first items."""
    if isinstance(shown, str) and "…" in shown:
        assert actual is not None, f"{where}: missing"
        prefix = shown.split("…", 1)[0]
        assert str(actual).startswith(prefix), f"{where}: {actual!r} does not start with {prefix!r}"
    elif isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in shown.items():
            assert key in actual, f"{where}.{key}: missing from {sorted(actual)}"
            matches(value, actual[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) >= len(shown), f"{where}: {actual!r}"
        for index, value in enumerate(shown):
            matches(value, actual[index], f"{where}.{index}")
    else:
        assert actual == shown, f"{where}: {actual!r} != {shown!r}"


@pytest.fixture
def live(settings) -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


def test_the_guide_runs_as_written_from_sign_in_to_a_listed_call(live, tmp_path):
    steps = walkthrough()
    assert steps[0][0].strip() == "make run"  # the server: here the live one, seeded the same way
    call_command("seed_demo", "--force", "--origin", live.url, stdout=io.StringIO())
    commands = steps[1:]
    assert len(commands) >= 7
    script = ["set -euo pipefail"]
    for lines, _answer in commands:
        script.append(lines.replace(DOC_BASE, live.url))
        script.append(f"echo; echo {MARK}")

    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    outputs = result.stdout.split(MARK)[: len(commands)]
    for index, ((lines, shown), output) in enumerate(zip(commands, outputs, strict=True)):
        if shown is None:
            assert not output.strip(), f"step {index + 1} printed {output!r}"
            continue
        actual = json.loads(output)
        matches(shown, actual, f"step {index + 1} ({lines.split()[0]} …)")
    # The call the guide started is the clinic's newest, ended, with the name the page sent.
    call = Call.objects.order_by("-started_at").first()
    assert call is not None and (call.caller_name, call.status) == ("Ana Diaz", "completed")
