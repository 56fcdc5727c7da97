"""No set-up traps for a newcomer: `.env.example` as copied is a working local (http) set-up, every command the
README shows works as written (the offline ones are run, the others checked against their parsers), and `make`
rebuilds a `.venv` made by another Python instead of reusing it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOYING = "## Deploying"

# Local commands (`DEBUG=true .venv/bin/python manage.py …`) that are checked, not run, and why.
NOT_RUN = {
    "simulate_call": "plays a call through `make run`'s server",
    "triage_train": "rewrites the shipped model (about 30 s)",
}
PLACEHOLDER = re.compile(r"<[^>]+>|\bFILE\b|\.\.\.")


def clean_env(**extra: str) -> dict[str, str]:
    """A newcomer's shell: none of the variables the test run sets (pytest-env, DATABASE_URL, ...)."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(ROOT)), "LANG": "C.UTF-8", **extra}


# --- .env.example ---------------------------------------------------------------------------------------------------

ENV_PROBE = """
import json, environ
environ.Env.read_env(".env.example", overwrite=False)  # what settings.py does with a .env copied from it
import django
from django.conf import settings
django.setup()
from django.test import Client
response = Client().get("/admin/login/", headers={"host": "127.0.0.1:8000"})
print(json.dumps({
    "debug": settings.DEBUG, "redirect": settings.SECURE_SSL_REDIRECT, "hsts": settings.SECURE_HSTS_SECONDS,
    "session_secure": settings.SESSION_COOKIE_SECURE, "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "status": response.status_code, "location": response.get("Location", ""),
}))
"""


def test_the_env_example_as_copied_serves_the_local_console_over_http(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", ENV_PROBE],
        cwd=ROOT,
        env=clean_env(DJANGO_SETTINGS_MODULE="voiceagent.settings", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["debug"] is True
    https = (values["redirect"], values["hsts"], values["session_secure"], values["csrf_secure"])
    assert https == (False, 0, False, False)
    assert (values["status"], values["location"]) == (200, "")  # the login page itself, not a redirect to https


def test_every_variable_of_the_env_example_is_one_the_settings_read():
    settings_source = (ROOT / "voiceagent" / "settings.py").read_text()
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    assert "DEBUG" in names and len(names) > 20
    assert [name for name in names if f'"{name}"' not in settings_source] == []


# --- README commands ------------------------------------------------------------------------------------------------


def readme_commands() -> list[tuple[str, bool]]:
    """Each command the README shows (inline code and ```sh blocks), and whether it is in the Deploying part."""
    text = README.read_text()
    deploying_at = text.index(DEPLOYING)
    found: list[tuple[str, bool]] = []
    for block in re.finditer(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for line in block.group(1).splitlines():
            command = line.split("  #", 1)[0].strip()
            if command:
                found.append((command, block.start() > deploying_at))
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for span in re.finditer(r"`([^`]+)`", prose):
        command = " ".join(span.group(1).split())  # a span may wrap over lines
        if re.match(r"^(\w+=\S+ )*(\.venv/bin/python|python|make|daphne|uvicorn) \S", command):  # not a bare name
            found.append((command, span.start() > prose.index(DEPLOYING)))
    return found


def manage_parts(command: str) -> list[tuple[str, list[str]]]:
    """(name, args) of each `manage.py` command in `command` (parts joined by &&)."""
    parts = []
    for part in command.split("&&"):
        words = shlex.split(part)
        if "manage.py" in words:
            rest = words[words.index("manage.py") + 1 :]
            parts.append((rest[0], rest[1:]))
    return parts


def check_parses(name: str, args: list[str]) -> None:
    commands = get_commands()
    assert name in commands, f"manage.py {name}: no such command"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    args = [PLACEHOLDER.sub("123", arg) if PLACEHOLDER.search(arg) else arg for arg in args]
    try:
        parser.parse_args(args)
    except SystemExit as exc:  # argparse's refusal
        raise AssertionError(f"manage.py {name} {' '.join(args)}: the arguments do not parse") from exc


def test_the_readme_shows_local_commands_that_work_after_make_run_and_deploy_commands_apart():
    commands = readme_commands()
    assert ("make run", False) in commands and ("make test", False) in commands
    for command, deploying in commands:
        if "manage.py" in command and not deploying:
            # Before Deploying a command must run in a fresh clone after `make run`: the venv's python, DEBUG on.
            assert command.startswith("DEBUG=true .venv/bin/python manage.py"), command


def test_every_command_the_readme_shows_is_known_and_its_arguments_parse(db):
    checked = 0
    for command, _deploying in readme_commands():
        words = shlex.split(command.split("&&")[0])
        program = next(word for word in words if "=" not in word)
        if "manage.py" in command:
            for name, args in manage_parts(command):
                check_parses(name, args)
                checked += 1
        elif program == "make":
            result = subprocess.run(
                ["make", "-n", *words[words.index("make") + 1 :]],
                cwd=ROOT,
                env=clean_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, f"{command}: {result.stderr}"
            checked += 1
        elif program in {"daphne", "uvicorn"}:
            executable = Path(sys.executable).parent / program
            assert executable.exists(), f"{program} is not installed"
            helped = subprocess.run(
                [str(executable), "--help"], capture_output=True, text=True, timeout=60, check=False
            )
            for option in [word for word in words if word.startswith("-")]:
                assert option in helped.stdout, f"{command}: {program} has no {option}"
            assert importlib.util.find_spec("voiceagent.asgi") and "voiceagent.asgi:application" in words
            for module in ("uvloop", "httptools") if program == "uvicorn" else ():
                assert importlib.util.find_spec(module), f"{command}: {module} is not installed"
            checked += 1
        elif words[:3] == [".venv/bin/python", "-m", "pytest"]:
            markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
            for marker in [words[i + 1] for i, word in enumerate(words) if word == "-m" and i > 1]:
                assert any(line.startswith(f"{marker}:") for line in markers), f"{command}: no marker {marker}"
            checked += 1
        elif program == "python" and words[1] == "-m":  # a module of ours with daphne's options
            assert importlib.util.find_spec(words[2]), f"{command}: no module {words[2]}"
            helped = subprocess.run(
                [sys.executable, "-m", words[2], "--help"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            for option in [word for word in words[3:] if word.startswith("-")]:
                assert option in helped.stdout, f"{command}: {words[2]} has no {option}"
            checked += 1
        elif program == "python" and words[1].endswith(".py"):
            assert (ROOT / words[1]).is_file(), f"{command}: no such script"
            checked += 1
        else:
            raise AssertionError(f"a README command this test does not know how to check: {command}")
    assert checked >= 15


@pytest.mark.slow
@pytest.mark.timeout(900)  # a hang guard only
def test_the_readmes_local_commands_run_as_written_offline(tmp_path):
    runnable = []
    for command, deploying in readme_commands():
        if deploying or not command.startswith("DEBUG=true .venv/bin/python manage.py"):
            continue
        name, args = manage_parts(command)[0]
        if name in NOT_RUN or any(PLACEHOLDER.search(arg) for arg in args):
            continue
        runnable.append(command)
    assert len(runnable) >= 4, runnable
    assert any("purge_expired --dry-run" in command for command in runnable)
    venv_python = ROOT / ".venv" / "bin" / "python"
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", LOG_LEVEL="WARNING")
    # What `make run` did before these commands: the database exists and is migrated.
    setup = ["DEBUG=true .venv/bin/python manage.py migrate --noinput", *runnable]
    for command in setup:
        if not venv_python.exists():  # a test run from another environment: its interpreter stands in
            command = command.replace(".venv/bin/python", shlex.quote(sys.executable))
        result = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


# --- make and the venv ----------------------------------------------------------------------------------------------

WRONG_PYTHON = """#!/bin/sh
# Stands for a venv made by Python 3.11: it answers like one.
case "$1" in
  -V|--version) echo "Python 3.11.9" ;;
  -c) exit 1 ;;
esac
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_rebuilds_a_venv_made_by_another_python(tmp_path):
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    (tmp_path / "requirements.txt").write_text("")  # nothing to install: the venv itself is under test
    (tmp_path / "requirements-dev.txt").write_text("")
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(WRONG_PYTHON)
    fake.chmod(0o755)
    (tmp_path / ".venv" / ".runtime").touch()  # the stamp a finished install left
    env = clean_env(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")

    def make() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "install", f"PYTHON312={sys.executable}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    first = make()

    assert first.returncode == 0, first.stdout + first.stderr
    assert "is not Python 3.12 (Python 3.11.9): rebuilding it" in first.stderr
    version = subprocess.run([str(fake), "-V"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("Python 3.12")
    assert (tmp_path / ".venv" / ".runtime").exists()  # and the packages were installed into the new one
    second = make()
    assert second.returncode == 0 and "rebuilding" not in second.stderr  # a right venv is kept
    assert "Nothing to be done" in second.stdout
