"""The write path's transports, beyond what DynamoDB Local exercises."""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import dynamodb_local
import h11
import orjson
import pytest
import trustme
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
    TokenRetrievalError,
)
from conftest import ROOT
from faultproxy import FaultProxy, Faults

import resumable_import.transport as transport_module
from resumable_import.attributes import to_item
from resumable_import.cli.hints import spelled
from resumable_import.dynamo import connect
from resumable_import.errors import CredentialsError
from resumable_import.transport import HttpTransport, SyncTransport, open_transport
from resumable_import.writer import Writer

OK = b'{"UnprocessedItems":{}}'
ITEM = [orjson.dumps(to_item({"pk": "a"}))]


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
    items = [orjson.dumps(to_item({"pk": f"k{i}", "n": i})) for i in range(25)]
    assert writer.write(items, [(f"k{i}",) for i in range(25)]) == []
    with urllib.request.urlopen(standin + "/stats") as response:
        assert json.loads(response.read())["distinct_keys"] == 25


# -- a server that answers exactly as told -------------------------------------------------

# What the script says to do for a request: bytes to send, "close", "reset", a number of
# seconds to pause, or a threading.Event to wait for.
Action = bytes | str | float | threading.Event
Script = Callable[[int, int, bytes], list[Action]]  # (connection, request on it, body)


class ScriptedServer:
    """Reads requests with h11, one thread per connection, and answers each as `script`
    says (the `n`th request on the `c`th connection, both from 1), byte for byte."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script, self.tls = script, tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        weakref.finalize(self, self.sock.close)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            leftover = b""
            for n in range(1, 1000):
                http = h11.Connection(h11.SERVER)
                if leftover:
                    http.receive_data(leftover)
                body = _read_body(conn, http)
                if body is None:
                    return
                leftover = http.trailing_data[0]
                for action in self.script(number, n, body):
                    if not _act(conn, action):
                        return
        except OSError:
            return
        finally:
            conn.close()


def _read_body(conn: socket.socket, http: h11.Connection) -> bytes | None:
    body = b""
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(conn.recv(65536))
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return body
        elif isinstance(event, h11.ConnectionClosed):
            return None


def _act(conn: socket.socket, action: Action) -> bool:
    """Do one action; False when the connection is gone."""
    if isinstance(action, bytes):
        conn.sendall(action)
    elif isinstance(action, threading.Event):
        assert action.wait(10)
    elif isinstance(action, float):
        time.sleep(action)
    elif action == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    elif action == "close":
        return False
    return True


def answer(body: bytes = OK, status: bytes = b"200 OK", version: bytes = b"1.1") -> bytes:
    return b"HTTP/%s %s\r\nContent-Length: %d\r\n\r\n%s" % (version, status, len(body), body)


def transport_to(url: str, verify: Any = None, **config: Any) -> HttpTransport:
    """A transport for `url`, from a client made as botocore makes one (so AWS_CA_BUNDLE
    and `verify` count), with `config` over rimport's timeouts."""
    client = boto3.session.Session().client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(**{"connect_timeout": 5, "read_timeout": 60, **config}),
        verify=verify,
    )
    return HttpTransport(client, Credentials("rimporttests", "rimporttests"))


@pytest.fixture
def closing() -> Iterator[list[HttpTransport]]:
    made: list[HttpTransport] = []
    yield made
    for transport in made:
        transport.close()


def collect(transport: HttpTransport, *tokens: object) -> list[object]:
    """The outcomes of `tokens`, in the order they arrived."""
    got: dict[object, object] = {}
    deadline = time.monotonic() + 10
    while len(got) < len(tokens) and time.monotonic() < deadline:
        got.update(transport.wait(0.5))
    assert set(got) == set(tokens), "no answer"
    return list(got.values())


def one(transport: HttpTransport) -> object:
    return collect(transport, transport.start("t", ITEM))[0]


# -- framing -------------------------------------------------------------------------------


def test_every_framing_is_read_and_a_connection_is_reused_only_when_it_may_be(
    closing: list[HttpTransport],
) -> None:
    bad = b'{"__type":"x#ValidationException","message":"Item size exceeded"}'
    answers = [
        answer(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"  # extensions, a trailer
        b"5;a=b\r\n" + OK[:5] + b"\r\n%x;last\r\n" % (len(OK) - 5) + OK[5:]
        + b"\r\n0\r\nX-Checksum: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + answer(),  # 1xx first: not the answer
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + answer()[17:],  # then a new connection
        b"HTTP/1.0 200 OK\r\n\r\n" + OK,  # HTTP/1.0, the body ends where the connection does
        answer(bad, b"400 Bad Request"),
    ]  # fmt: skip
    ends = {4: "close", 5: "close"}
    server = ScriptedServer(lambda c, n, body: [answers.pop(0), ends.get(6 - len(answers), b"")])
    transport = transport_to(server.url)
    closing.append(transport)
    for _ in range(5):
        assert one(transport) == {"UnprocessedItems": {}}
    error = one(transport)
    assert isinstance(error, ClientError)
    assert error.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size exceeded",
    }
    assert server.connections == 3  # the first four answers on one, one after each close


def test_answers_rfc_9112_calls_errors_are_garbled_and_their_connection_closed(
    closing: list[HttpTransport],
) -> None:
    """The first two are how responses are smuggled: the parser refuses them, as RFC 9112
    says a client ought to, and a switch of protocols nobody asked for too; each request
    ends as a closed connection (which the writer retries)."""
    answers = [
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n" + answer()[17:],  # an obsolete fold
        b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(OK), OK),  # a length, and chunks too
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        answer() + b"HTTP/1.1 200 OK\r\n",  # a whole answer, then the start of another
        answer() + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
        b"Connection: Upgrade\r\n\r\n",  # a whole answer, then a switch nobody asked for
        answer(),
    ]  # fmt: skip
    server = ScriptedServer(lambda c, n, body: [answers.pop(0)])
    transport = transport_to(server.url)
    closing.append(transport)
    for _ in range(3):
        error = one(transport)
        assert isinstance(error, ConnectionClosedError)
    for _ in range(3):
        assert one(transport) == {"UnprocessedItems": {}}  # the answers stand
    assert server.connections == 6  # none of the five was used again


def test_an_answer_in_pieces_is_read_whole_its_reason_too(closing: list[HttpTransport]) -> None:
    """The parser hands over the status line, headers and body as they come, a piece per
    read: nothing of them is lost at the seams."""
    page = b"<html>busy</html>"
    bad = answer(page, b"502 Very Bad Gateway")
    good = b"HTTP/1.1 100 Continue\r\n\r\n" + answer()
    cuts = {1: [15, 20, 33, 40], 2: [4, 20, 27, 30, 50, 60]}  # mid-reason, mid-header, ...

    def pieces(c: int, n: int, body: bytes) -> list[Action]:
        text = bad if n == 1 else good
        edges = [0, *cuts[n], len(text)]
        out: list[Action] = []
        for a, b in itertools.pairwise(edges):
            out += [text[a:b], 0.02]
        return out

    server = ScriptedServer(pieces)
    transport = transport_to(server.url)
    closing.append(transport)
    error = one(transport)
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Message"] == (
        "502 Very Bad Gateway from something between rimport and DynamoDB (a proxy?)"
    )
    assert one(transport) == {"UnprocessedItems": {}}
    assert server.connections == 1


def test_a_proxys_html_page_becomes_a_short_error_with_its_status(
    closing: list[HttpTransport],
) -> None:
    page = b"<html><head><title>413 Request Entity Too Large</title></head><body></body></html>"
    answers = [
        answer(page, b"413 Request Entity Too Large"),
        answer(page.replace(b"413", b"502"), b"502 Bad Gateway"),
        answer(b"<html>Welcome to the hotel wifi</html>"),
    ]
    server = ScriptedServer(lambda c, n, body: [answers.pop(0)])
    transport = transport_to(server.url)
    closing.append(transport)
    for status, code, message in [
        (413, "HTTP413", "413 Request Entity Too Large from something between rimport and "
         "DynamoDB (a proxy?)"),
        (502, "HTTP502", "502 Bad Gateway from something between rimport and DynamoDB (a proxy?)"),
        (200, "HTTP200", "200 OK with an answer that is not DynamoDB's, from something between"
         " rimport and DynamoDB (a proxy?)"),
    ]:  # fmt: skip
        error = one(transport)
        assert isinstance(error, ClientError)
        assert error.response["Error"] == {"Code": code, "Message": message}
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_413_from_the_fault_proxy_is_reported_as_such(closing: list[HttpTransport]) -> None:
    with FaultProxy("http://127.0.0.1:9", Faults(error=413, error_once=True)) as proxy:
        transport = transport_to(proxy.url)
        closing.append(transport)
        error = one(transport)
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == "HTTP413"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "<" not in error.response["Error"]["Message"]
    assert proxy.stats["refused 413"] == 1


# -- connections that die ------------------------------------------------------------------


def test_a_connection_the_server_closed_while_idle_is_not_used_again(
    closing: list[HttpTransport],
) -> None:
    server = ScriptedServer(lambda c, n, body: [answer(), "close"])  # and no header says so
    transport = transport_to(server.url)
    closing.append(transport)
    for _ in range(3):
        assert one(transport) == {"UnprocessedItems": {}}
        time.sleep(0.05)  # the server's FIN arrives while the connection is idle
    assert server.connections == 3


def test_a_request_on_a_dead_reused_connection_goes_again_once_on_a_new_one(
    closing: list[HttpTransport],
) -> None:
    # The first connection answers once, then dies under the next request (a server that
    # timed the connection out just as it was reused); every later connection answers.
    server = ScriptedServer(lambda c, n, body: ["close"] if (c, n) == (1, 2) else [answer()])
    transport = transport_to(server.url)
    closing.append(transport)
    assert one(transport) == {"UnprocessedItems": {}}
    assert one(transport) == {"UnprocessedItems": {}}  # not a failure: sent again at once
    assert server.connections == 2


def test_a_request_is_sent_again_at_most_once(closing: list[HttpTransport]) -> None:
    server = ScriptedServer(lambda c, n, body: [answer()] if (c, n) == (1, 1) else ["close"])
    transport = transport_to(server.url)
    closing.append(transport)
    assert one(transport) == {"UnprocessedItems": {}}
    assert isinstance(one(transport), ConnectionClosedError)
    assert server.connections == 2


def test_a_reset_in_the_middle_of_an_answer_is_a_closed_connection(
    closing: list[HttpTransport],
) -> None:
    server = ScriptedServer(lambda c, n, body: [answer()[:30], 0.05, "reset"])
    transport = transport_to(server.url)
    closing.append(transport)
    assert isinstance(one(transport), ConnectionClosedError)
    server.script = lambda c, n, body: [b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"]
    assert isinstance(one(transport), ConnectionClosedError)  # garbled


def test_idle_connections_are_closed_after_the_idle_limit(
    closing: list[HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ScriptedServer(lambda c, n, body: [answer()])
    transport = transport_to(server.url)
    closing.append(transport)
    assert one(transport) == {"UnprocessedItems": {}}
    assert one(transport) == {"UnprocessedItems": {}}
    assert server.connections == 1
    monkeypatch.setattr(transport_module, "IDLE_LIMIT", 0.0)
    assert one(transport) == {"UnprocessedItems": {}}
    assert server.connections == 2


# -- nothing blocks the loop ---------------------------------------------------------------


def test_a_trickling_answer_does_not_hold_up_the_others(closing: list[HttpTransport]) -> None:
    go_on = threading.Event()
    slow = answer()

    def script(c: int, n: int, body: bytes) -> list[Action]:
        if b'"slow"' in body:  # half its answer, then nothing until the fast one is in
            return [
                *(slow[i : i + 1] for i in range(len(slow) // 2)),
                go_on,
                slow[len(slow) // 2 :],
            ]
        return [answer()]

    server = ScriptedServer(script)
    transport = transport_to(server.url)
    closing.append(transport)
    first = transport.start("slow", ITEM)
    time.sleep(0.1)  # its first bytes are there before the second request goes
    second = transport.start("fast", ITEM)
    assert collect(transport, second) == [{"UnprocessedItems": {}}]
    go_on.set()
    assert collect(transport, first) == [{"UnprocessedItems": {}}]


def test_a_request_never_answered_is_lost_after_the_read_timeout(
    closing: list[HttpTransport],
) -> None:
    server = ScriptedServer(lambda c, n, body: [2.0])
    transport = transport_to(server.url, read_timeout=0.3)
    closing.append(transport)
    assert isinstance(one(transport), ReadTimeoutError)


def test_a_handshake_that_never_ends_is_bounded_by_the_connect_timeout_and_blocks_nothing(
    closing: list[HttpTransport],
) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never speaks TLS
    weakref.finalize(silent, silent.close)
    transport = transport_to(f"https://127.0.0.1:{silent.getsockname()[1]}", connect_timeout=0.5)
    closing.append(transport)
    token = transport.start("t", ITEM)
    started = time.monotonic()
    assert transport.wait(0.05) == []
    assert time.monotonic() - started < 0.4  # the loop came back; it did not sit in the handshake
    (outcome,) = collect(transport, token)
    assert isinstance(outcome, EndpointConnectionError)
    assert "connect timed out" in str(outcome.kwargs["error"])


def test_nothing_listening_is_a_connection_error(closing: list[HttpTransport]) -> None:
    transport = transport_to(f"http://127.0.0.1:{dynamodb_local.free_port()}")
    closing.append(transport)
    assert isinstance(one(transport), EndpointConnectionError)


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> ScriptedServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return ScriptedServer(lambda c, n, body: [answer()], tls=context)


def test_tls_is_verified_with_the_ca_bundle_botocore_resolved(
    ca: trustme.CA,
    tls_server: ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[HttpTransport],
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    transport = transport_to(tls_server.url)  # botocore's own CAs: not this test CA
    closing.append(transport)
    error = one(transport)
    assert isinstance(error, SSLError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert tls_server.connections == 1  # refused once, not retried behind the writer's back

    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))  # the standard botocore way
    transport = transport_to(tls_server.url)
    closing.append(transport)
    assert one(transport) == {"UnprocessedItems": {}}
    assert one(transport) == {"UnprocessedItems": {}}
    assert tls_server.connections == 2  # kept alive over TLS too


@pytest.mark.parametrize("verify", [False, "bundle"])
def test_tls_follows_the_clients_verify_argument(
    ca: trustme.CA,
    tls_server: ScriptedServer,
    tmp_path: Path,
    closing: list[HttpTransport],
    verify: object,
) -> None:
    if verify == "bundle":
        verify = str(tmp_path / "ca.pem")
        ca.cert_pem.write_to_path(verify)
    transport = transport_to(tls_server.url, verify=verify)
    closing.append(transport)
    assert one(transport) == {"UnprocessedItems": {}}


# -- credentials ---------------------------------------------------------------------------


class ExpiredCredentials(Credentials):
    def get_frozen_credentials(self) -> Any:
        raise TokenRetrievalError(provider="sso", error_msg="the SSO session has expired")


def test_credentials_that_cannot_be_refreshed_stop_at_start() -> None:
    conn = connect("http://127.0.0.1:9", "us-east-1")
    transport = HttpTransport(conn.client, ExpiredCredentials("a", "b"))
    with pytest.raises(CredentialsError) as caught:
        transport.start("t", ITEM)
    assert "TokenRetrievalError" in caught.value.message
    assert "the SSO session has expired" in caught.value.message
    assert caught.value.hint is not None and "rimport resume" in spelled(caught.value.hint)
    transport.close()
