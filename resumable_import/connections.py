"""What `transport.HttpTransport` keeps per connection, and how it trusts the endpoint.

Each connection is a non-blocking socket with the answer it is reading and at most one request,
so that one thread can keep many of them busy; its TLS is verified as botocore's client was
configured to verify, so the fast path trusts exactly what the plain client would. An idle
connection the server closed, or sent something unasked on, is not used again.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any

from botocore.httpsession import get_cert_path

from .http1 import Answer

# The phases of a connection.
CONNECTING, HANDSHAKE, BUSY, IDLE, CLOSED = "connecting", "handshake", "busy", "idle", "closed"


class Request:
    """One BatchWriteItem on its way, which may move to a new connection once."""

    __slots__ = ("body", "head", "resent", "token")

    def __init__(self, token: int, head: bytes, body: bytes) -> None:
        self.token, self.head, self.body = token, head, body
        self.resent = False  # sent again already, after a reused connection turned out dead


class Connection:
    """One HTTP/1.1 connection: a non-blocking socket, the one request it carries (None
    while idle) and that request's answer."""

    __slots__ = (
        "address", "addresses", "answer", "answered", "born", "deadline", "events", "out",
        "phase", "request", "sent", "served", "since", "sock",
    )  # fmt: skip

    def __init__(self, request: Request) -> None:
        self.sock: socket.socket | None = None
        self.answer = Answer()
        self.phase = CONNECTING
        self.request: Request | None = request
        self.out = memoryview(b"")
        self.sent = 0
        self.deadline = 0.0
        self.served = 0  # exchanges completed on it: a dead reused connection is not a failure
        self.answered = False  # a byte of the current answer arrived
        self.since = 0.0  # idle since
        self.born = 0.0  # when it began to connect
        self.events = 0  # what the selector watches it for
        self.addresses: list[Any] = []  # still to try while connecting
        self.address: Any = None  # the one it connects to


def still_open(sock: socket.socket | None) -> bool:
    """Whether an idle connection may carry another request: nothing to read on it. The
    server's FIN, its TLS close alert or bytes nobody asked for all mean it may not (a TLS
    record that is only a session ticket is taken in, and the connection stays)."""
    if sock is None:
        return False
    try:
        sock.recv(1)
    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return True
    except OSError:
        return False
    return False


def tls_context(client: Any) -> ssl.SSLContext:
    """A TLS context that verifies as the client's own HTTP session does.

    botocore resolved `verify` from the client's `verify=` argument, AWS_CA_BUNDLE or the
    profile's `ca_bundle` (and REQUESTS_CA_BUNDLE): False (no verification), True (its
    bundled CAs) or a CA bundle path; its URLLib3Session keeps that as `_verify`, and a
    client certificate as `_cert_file`/`_key_file`.
    """
    http = client._endpoint.http_session
    verify = getattr(http, "_verify", True)
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        where = get_cert_path(verify)
        if os.path.isdir(where):
            context = ssl.create_default_context(capath=where)
        else:
            context = ssl.create_default_context(cafile=where)
    cert = getattr(http, "_cert_file", None)
    if cert:
        context.load_cert_chain(cert, getattr(http, "_key_file", None))
    return context
