"""daphne, with request bodies bounded while they arrive (docs/facts.md#body-limits).

Stock daphne lets Twisted take the whole body (spooled to memory or a temporary file) before the application starts,
so `core.bodylimit.BodyLimit` can only answer 413 after every byte was read. Here the Twisted request refuses early,
with the same limits (`body_limit_for`) and the same answer:
- a declared Content-Length over the limit is answered 413 as soon as the headers are in; the body is never read;
- a body without one (chunked) is counted as it arrives and answered 413 once it passes the limit.
Either way the connection is closed after the answer (`Connection: close`) and the application never starts.

Run it as daphne itself: `python -m core.daphne_server -b 0.0.0.0 -p 8000 -v 0 voiceagent.asgi:application`
(same options; `manage.py serve` uses it too).
"""

from __future__ import annotations

import json
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server

from core.bodylimit import body_limit_for


def refusal(path: str, status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer, shaped as `core.bodylimit` shapes it (JSON error under /api/, plain text elsewhere)."""
    if path.startswith("/api/"):
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        content_type = b"application/json"
    else:
        body = f"{status} {message}\n".encode()
        content_type = b"text/plain; charset=utf-8"
    reason = {400: b"Bad Request", 413: b"Content Too Large"}[status]
    head = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
        b"Connection: close",
        b"Cache-Control: no-store",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class BoundedWebRequest(WebRequest):
    """daphne's request, refusing an over-limit body before Twisted stores it."""

    _body_limit = 0
    _body_received = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        # Called once the headers are in, before any body byte; the request line is still on the channel.
        raw_path = getattr(self.channel, "_path", b"/").split(b"?", 1)[0]
        path = raw_path.decode("latin-1")
        self._body_limit = body_limit_for(path)
        if length is not None and length > self._body_limit:
            self._refuse(path)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a buffer that arrived with the refused bytes
        self._body_received += len(data)
        if self._body_received > self._body_limit:
            raw_path = getattr(self.channel, "_path", b"/").split(b"?", 1)[0]
            self._refuse(raw_path.decode("latin-1"))
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return  # the body's end came in the same buffer as the refused bytes: the application never starts
        super().requestReceived(command, path, version)

    def _refuse(self, path: str) -> None:
        self._refused = True
        # Twisted would answer `Expect: 100-continue` right after this (it asks for the body we just refused).
        self.requestHeaders.removeHeader(b"Expect")
        message = f"The request body is larger than the limit of {self._body_limit} bytes."
        transport = self.channel.transport
        transport.write(refusal(path, 413, "payload_too_large", message))
        # Stops reading at once and closes once the answer is written: the unread body is never taken.
        transport.loseConnection()


class BoundedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        return protocol


class BoundedServer(Server):
    """daphne's Server with the bounded request. `Server.run` builds its HTTP factory inline
    (`self.http_factory = HTTPFactory(self)`); the setter swaps in ours there rather than copying run()."""

    @property
    def http_factory(self) -> Any:
        return self._bounded_http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        self._bounded_http_factory = BoundedHTTPFactory(self)


class BoundedCommandLineInterface(CommandLineInterface):
    server_class = BoundedServer


if __name__ == "__main__":
    BoundedCommandLineInterface.entrypoint()
