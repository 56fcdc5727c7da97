"""Under daphne as we run it (`python -m core.daphne_server`, the README's production command and `manage.py
serve`), request bodies are bounded while they arrive: stock daphne took a whole body (a 256 MiB POST raised its
RSS from 124 to 396 MB) before the application could answer 413. A real server process on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SERVER = [sys.executable, "-m", "core.daphne_server"]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def daphne(tmp_path_factory) -> Iterator[tuple[tuple[str, int], int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_", "PYTEST"))}
    env.update(
        DEBUG="true",
        API_MAX_BODY_BYTES="262144",
        DATA_UPLOAD_MAX_MEMORY_SIZE=str(MIB),
        DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('daphne') / 'db.sqlite3'}",
    )
    log = tmp_path_factory.mktemp("daphne-log") / "daphne.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SERVER, "-b", "127.0.0.1", "-p", str(port), "-v", "0", "voiceagent.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120  # a hang guard: a loaded machine starts Django slowly
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "daphne did not start listening"
            time.sleep(0.2)
        yield ("127.0.0.1", port), process.pid
    finally:
        process.terminate()
        process.wait(30)


def _connect(address: tuple[str, int]) -> socket.socket:
    client = socket.create_connection(address, timeout=30)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    return client


def _send_until_refused(client: socket.socket, data: bytes, repeat: int) -> None:
    try:
        for _ in range(repeat):
            client.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while we were still sending: what is under test


def _response(client: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while True:
        try:
            chunk = client.recv(65536)
        except ConnectionResetError:
            break  # the unread rest of our upload made the kernel reset after the answer; it was read
        if not chunk:
            break
        data += chunk
    assert b"\r\n\r\n" in data, f"no response: {data!r}"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("path", ["/api/call/start", "/healthz"])
def test_a_declared_over_limit_body_is_refused_before_it_is_read(daphne, path):
    address, _pid = daphne
    with _connect(address) as client:
        client.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {64 * MIB}\r\nExpect: 100-continue\r\n\r\n".encode()
        )  # and no body at all: a server that waited for it would never answer
        status, headers, body = _response(client)
    assert status == 413
    assert headers["connection"] == "close"
    assert b"100 Continue" not in body  # the refused body is not asked for
    if path.startswith("/api/"):
        assert json.loads(body)["error"]["code"] == "payload_too_large"
    else:
        assert body.startswith(b"413 ")


def test_a_256_mib_upload_is_refused_without_the_server_growing_by_its_size(daphne):
    address, pid = daphne
    before = _rss_mib(pid)
    chunk = b"x" * MIB
    with _connect(address) as client:
        client.sendall(f"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {256 * MIB}\r\n\r\n".encode())
        _send_until_refused(client, chunk, 256)
        status, _headers, _body = _response(client)
    assert status == 413
    assert _rss_mib(pid) - before < 32  # stock daphne: +272 MB


def test_a_chunked_body_is_refused_once_it_passes_the_limit(daphne):
    address, pid = daphne
    before = _rss_mib(pid)
    chunk = b"y" * 65536
    with _connect(address) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        _send_until_refused(client, b"%x\r\n%s\r\n" % (len(chunk), chunk), 64 * MIB // len(chunk))
        status, headers, _body = _response(client)
    assert status == 413
    assert headers["connection"] == "close"
    assert _rss_mib(pid) - before < 32


def test_a_body_within_the_limit_reaches_the_application(daphne):
    address, _pid = daphne
    payload = b"z" * (512 * 1024)  # over the API's limit, within the one for other paths
    with _connect(address) as client:
        client.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(payload), payload)
        )
        status, _headers, body = _response(client)
    assert status == 200  # the application read the body and answered
    assert json.loads(body)["status"] == "ok"
