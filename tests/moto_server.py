"""Start and stop moto's DynamoDB in server mode: a second implementation of the API for the
tests, written apart from AWS's DynamoDB Local, so that rimport is not proved against one
server's quirks only.

moto 5 serves every mocked AWS service on one port (`python -m moto.server`, a threaded
Werkzeug server speaking HTTP/1.1) and keeps its data in that process's memory, so each
`running()` starts from nothing.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    """True once moto serves HTTP. `/moto-api/` is moto's own dashboard: it needs no
    signature, so any answer at all means the server is up."""
    try:
        urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running(log: Path | None = None, startup: float = 30) -> Iterator[str]:
    """A fresh moto server on a free port of 127.0.0.1 for the duration; yields its URL.

    Stopped with SIGTERM, then SIGKILL if it has not exited within 10 seconds (it takes
    a few on a busy machine), so a test
    session never leaves it behind.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=sink, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + startup
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's server did not start on port {port}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            sink.close()  # type: ignore[union-attr]
