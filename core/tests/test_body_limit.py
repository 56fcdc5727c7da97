"""Request bodies are bounded before they are read, under a real uvicorn on loopback with the project's ASGI
application: the client gets its 413 while it is still sending (a 64 MiB upload used to be read whole first)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from voiceagent.asgi import application

MIB = 1024 * 1024


@pytest.fixture
def server(settings) -> Iterator[tuple[str, int]]:
    settings.API_MAX_BODY_BYTES = 262_144
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = MIB
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(application, lifespan="off", log_level="warning", http="h11", ws="none")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not served.started:
        thread.join(0.02)
    yield sock.getsockname()
    served.should_exit = True
    thread.join(10)
    sock.close()


def _connect(address: tuple[str, int]) -> socket.socket:
    client = socket.create_connection(address, timeout=10)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    return client


def _response(client: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        assert chunk, f"connection closed without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = client.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("path", ["/api/call/start", "/healthz"])
def test_a_declared_64_mib_body_is_refused_before_it_is_sent(server, path):
    with _connect(server) as client:
        client.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {64 * MIB}\r\n\r\n".encode()
            + b"x" * 65536  # and then stop: a server that waits for the body never answers
        )
        status, headers, body = _response(client)
    assert status == 413
    assert headers["connection"] == "close"
    if path.startswith("/api/"):
        assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_refused_once_it_passes_the_limit_without_reading_the_rest(server):
    with _connect(server) as client:
        client.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * 65536
        try:
            for _ in range(MIB // len(chunk) + 2):  # just past the 1 MiB limit; the body is never finished
                client.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before our last chunk: what is under test; its 413 is waiting
        status, headers, _body = _response(client)
    assert status == 413
    assert headers["connection"] == "close"


def test_a_body_within_the_limit_reaches_the_application(server, db):
    with _connect(server) as client:
        payload = json.dumps({"channel": "web", "caller": {}, "metadata": {"note": "z" * 100_000}}).encode()
        client.sendall(
            b"POST /api/call/start HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        status, _headers, body = _response(client)
    assert status == 401  # the application answered: no publishable key
    assert json.loads(body)["error"]["code"] != "payload_too_large"


def test_a_content_length_that_is_not_a_number_is_a_400(server):
    with _connect(server) as client:
        client.sendall(b"POST /api/call/start HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12abc\r\n\r\n")
        status, _headers, _body = _response(client)
    assert status == 400
