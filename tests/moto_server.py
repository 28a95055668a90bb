"""Start and stop moto's DynamoDB in server mode: a second implementation of the API for the
tests, written apart from AWS's DynamoDB Local, so that rimport is not proved against one
server's quirks only.

moto 5 serves every mocked AWS service on one port (`python -m moto.server`, a threaded
Werkzeug server speaking HTTP/1.1) and keeps its data in that process's memory, so each
`running()` starts from nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from dynamodb_local import free_port, serving


@contextlib.contextmanager
def running(log: Path | None = None, startup: float = 30) -> Iterator[str]:
    """A fresh moto server on a free port of 127.0.0.1 for the duration; yields its URL.
    `/moto-api/` is moto's own dashboard: it needs no signature, so any answer means up."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with serving(command, f"http://127.0.0.1:{port}", "moto's server", log=log,
                 probe="/moto-api/", startup=startup) as url:  # fmt: skip
        yield url
