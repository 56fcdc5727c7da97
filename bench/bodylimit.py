"""Large request bodies against each documented server: when the 413 comes and what the upload costs in RSS.

`python bench/bodylimit.py [--mib 64]` starts daphne and uvicorn (loopback, SQLite, DEBUG off) on the project's
ASGI application, POSTs one body of N MiB to /healthz (the whole body is sent, as a client that does not read
early answers would), and prints the answer, when it arrived (after how many bytes were sent) and the server's RSS
before and after. One request per server, on loopback only; the servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import free_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVERS = {
    "daphne": [PY, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", "{port}", "voiceagent.asgi:application"],
    "uvicorn": [
        PY, "-m", "uvicorn", "voiceagent.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off",
    ],
}  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def upload(port: int, mib: int) -> tuple[str, int]:
    """POST `mib` MiB; returns (status line, bytes sent when the first answer byte was readable)."""
    total = mib * 1024 * 1024
    chunk = b"x" * 65536
    sent = 0
    answered_at = -1
    with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        client.sendall(f"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n\r\n".encode())
        client.setblocking(False)
        response = b""
        while sent < total:
            try:
                data = client.recv(65536)
                if data and answered_at < 0:
                    answered_at = sent
                response += data
                if not data:
                    break
            except BlockingIOError:
                pass
            try:
                sent += client.send(chunk)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break  # the server closed the connection
        client.settimeout(30)
        try:
            while b"\r\n" not in response:
                data = client.recv(65536)
                if not data:
                    break
                if answered_at < 0:
                    answered_at = sent
                response += data
        except OSError:
            pass
    return response.split(b"\r\n", 1)[0].decode(errors="replace"), answered_at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-" + "k" * 50, "ALLOWED_HOSTS": "127.0.0.1"}
    env.update({"SECURE_SSL_REDIRECT": "false", "DJANGO_SETTINGS_MODULE": "voiceagent.settings"})
    print(f"| server | {args.mib} MiB POST /healthz | answered after sending | RSS before -> after |")
    print("|---|---|---|---|")
    for name, command in SERVERS.items():
        port = free_port()
        process = subprocess.Popen(
            [part.format(port=port) for part in command], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
        )
        try:
            wait_listening(port)
            time.sleep(1.0)
            before = rss_mb(process.pid)
            status, answered_at = upload(port, args.mib)
            time.sleep(1.0)
            after = rss_mb(process.pid)
            at = f"{answered_at / 1024 / 1024:.1f} MiB" if answered_at >= 0 else "-"
            print(f"| {name} | {status} | {at} | {before:.0f} -> {after:.0f} MB |")
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
