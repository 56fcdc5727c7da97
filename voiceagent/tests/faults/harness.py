"""Processes for the fault suite, all on 127.0.0.1 and free ports, each stopped by the test that started it.

- `PostgresCluster`: a private cluster (initdb into a temp dir; run as the `postgres` user when we are root, since
  initdb refuses root), restartable (`pg_ctl restart -m fast`) and freezable (SIGSTOP/SIGCONT of its processes).
- `RedisServer`: `redis-server --save '' --appendonly no`, killable with SIGKILL and restartable on the same port.
- `Server`: `python -m daphne … voiceagent.asgi:application` with its environment pointing at them.
- `ManageProcess`: a long-running `manage.py` command (the notification worker, the reaper).
- `seed(...)`: one clinic with a Twilio number, 24/7 hours, an escalation phone, and a logged-in staff session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from fakes.twilio.testing import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL

ROOT = Path(__file__).resolve().parents[3]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SECRET_KEY = "faults-suite-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
OPENAI_KEY = "sk-faults-SECRET-do-not-leak-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> float:
    """Poll until `predicate()` is truthy; returns the seconds it took. Raises TimeoutError naming `what`."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


# --- PostgreSQL -------------------------------------------------------------------------------------------------


class PostgresCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="va-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_root = os.geteuid() == 0
        self.frozen: list[int] = []

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [*(["runuser", "-u", "postgres", "--"] if self.as_root else []), *args]
        return subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, cwd=self.dir)

    def _options(self) -> str:
        return f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"

    def start(self) -> PostgresCluster:
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-o",
            self._options(),
            "start",
        )
        return self

    def restart(self, mode: str = "fast") -> None:
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-m",
            mode,
            "-o",
            self._options(),
            "restart",
        )

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open and nothing answers."""
        master = self.postmaster_pid()
        self.frozen = [master, *_children(master)]
        for pid in reversed(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def stop(self) -> None:
        self.thaw()
        with contextlib.suppress(Exception):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True, connect_timeout=3
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def query(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect(database) as conn:
            return conn.execute(sql, params).fetchall()


# --- Redis ------------------------------------------------------------------------------------------------------


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, what="redis up")
        return self

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: nothing flushed, every connection reset
            self.process.wait(10)

    def stop(self) -> None:
        self.kill()


# --- the application --------------------------------------------------------------------------------------------


def app_env(
    *, database_url: str, redis_url: str = "", openai_url: str = "http://127.0.0.1:9/v1", **overrides: str
) -> dict[str, str]:
    """The environment of a deployed process, pointed at the suite's private services."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "OPENAI_", "TWILIO_", "THROTTLE_", "DJANGO_", "PYTEST"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "voiceagent.settings",
            "PYTHONPATH": str(ROOT),
            "SECRET_KEY": SECRET_KEY,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_HSTS_SECONDS": "0",
            "SESSION_IDLE_TIMEOUT_SECONDS": "86400",
            "SESSION_ABSOLUTE_LIFETIME_SECONDS": "86400",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "OPENAI_BASE_URL": openai_url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_TIMEOUT_SECONDS": "2",
            "PUBLIC_BASE_URL": TEST_PUBLIC_BASE_URL,
            "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # no transfers in this suite: refused at once
            "THROTTLE_CALLER_IP_RATE": "100000/min",
            "THROTTLE_CALLER_ORG_RATE": "100000/min",
            "THROTTLE_CALLER_ORG_IP_RATE": "100000/min",  # the load comes from one address
        }
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def seed(env: dict[str, str]) -> dict[str, str]:
    """Create the clinic, its number and a staff session in the database `env` points at; returns their ids."""
    result = subprocess.run(
        [sys.executable, "-m", "voiceagent.tests.faults.seed"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


class Server:
    """One ASGI server process (daphne, as `make run`) on a free port."""

    def __init__(self, env: dict[str, str], *, name: str = "web") -> None:
        self.env = env
        self.name = name
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix=f"va-faults-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> Server:  # a hang guard: a loaded 2-core box starts Django slowly
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "voiceagent.asgi:application",
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.healthy, timeout, interval=0.1, what=f"{self.name} accepting requests")
        return self

    def healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.unlink(missing_ok=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ManageProcess:
    """A long-running management command (`deliver_notifications`, `reap_calls --every …`)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.log = Path(tempfile.mkstemp(prefix="va-faults-manage-", suffix=".log")[1])
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.unlink(missing_ok=True)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
