"""The write path's transports, beyond what DynamoDB Local exercises."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import dynamodb_local
import orjson
import pytest
from conftest import ROOT

from resumable_import.dynamo import connect
from resumable_import.items import to_item
from resumable_import.transport import SyncTransport, open_transport
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
