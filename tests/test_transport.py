"""The write path's transports, beyond what DynamoDB Local exercises."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Iterator

import dynamodb_local
import orjson
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from conftest import ROOT

import resumable_import.transport as transport_module
from resumable_import.dynamo import connect
from resumable_import.items import to_item
from resumable_import.transport import HttpTransport, SyncTransport, open_transport
from resumable_import.writer import Writer


@pytest.fixture
def standin() -> Iterator[str]:
    """bench/standin.py, which also answers requests sent to it as a plain HTTP proxy."""
    port = dynamodb_local.free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "standin.py"), f"--port={port}"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not dynamodb_local._answers(url + "/stats"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait()


def test_with_a_proxy_set_writes_go_through_botocores_session(
    standin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", standin)
    conn = connect("http://localhost:9", "us-east-1")  # nothing listens there: only the proxy
    transport = open_transport(conn.client, conn.credentials)
    assert isinstance(transport, SyncTransport)
    writer = Writer(transport, "t", ("pk",))
    assert writer.write([orjson.dumps(to_item({"pk": f"k{i}", "n": i})) for i in range(25)]) == []
    with urllib.request.urlopen(standin + "/stats") as response:
        assert json.loads(response.read())["distinct_keys"] == 25


class OneShotServer:
    """A socket server that answers each request with the next canned response (or with
    silence), to drive the HTTP connection through what DynamoDB Local never sends."""

    def __init__(self, responses: list[bytes | None]) -> None:
        self.responses = responses
        self.sock = socket.create_server(("127.0.0.1", 0))
        weakref.finalize(self, self.sock.close)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.responses:
            conn, _ = self.sock.accept()
            with conn:
                while self.responses:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                    while len(body) < length:
                        body += conn.recv(65536)
                    answer = self.responses.pop(0)
                    if answer is None:
                        time.sleep(2)  # never answers in time
                        return
                    conn.sendall(answer)
                    if b"Connection: close" in answer:
                        break


def transport_to(url: str) -> HttpTransport:
    conn = connect(url, "us-east-1")
    return HttpTransport(conn.client, conn.credentials)


def collect(transport: HttpTransport, token: object) -> object:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for t, outcome in transport.wait(0.5):
            if t == token:
                return outcome
    raise AssertionError("no answer")


def test_the_http_connection_reads_every_framing_and_reconnects(
    request: pytest.FixtureRequest,
) -> None:
    ok = b'{"UnprocessedItems": {}}'
    bad = b'{"__type":"x#ValidationException","message":"Item size exceeded"}'
    chunked = b"".join(
        (b"5\r\n", ok[:5], b"\r\n", b"%x\r\n" % (len(ok) - 5), ok[5:], b"\r\n0\r\n\r\n")
    )
    server = OneShotServer([
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok),
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(bad), bad),
    ])  # fmt: skip
    transport = transport_to(server.url)
    item = [orjson.dumps(to_item({"pk": "a"}))]
    request.addfinalizer(transport.close)
    for _ in range(3):
        assert collect(transport, transport.start("t", item)) == {"UnprocessedItems": {}}
    error = collect(transport, transport.start("t", item))  # on a new connection
    assert isinstance(error, ClientError)
    assert error.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size exceeded",
    }


def test_a_request_never_answered_is_lost_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(transport_module, "TIMEOUT", 0.3)
    server = OneShotServer([None])
    transport = transport_to(server.url)
    request.addfinalizer(transport.close)
    outcome = collect(transport, transport.start("t", [orjson.dumps(to_item({"pk": "a"}))]))
    assert isinstance(outcome, ReadTimeoutError)
