"""Where the endpoint's name points, kept fresh without holding up the transport's loop.

AWS's endpoints answer from many addresses, and the set changes over hours: an import that
looked the name up once would, by its tenth hour, keep every connection on the few
addresses it first saw, some of them long since taken out of service. So:

- the first lookup is made at once, and so is one after every address failed (nothing
  can be sent then anyway);
- `REFRESH` seconds after a lookup, the name is looked up again in a thread of its own,
  the known addresses used until its answer comes: `getaddrinfo` blocks, and the one loop
  that keeps every request moving must not;
- each new connection starts at the next address in turn, so the connections spread over
  all of them; an address that refused a connection is tried last until the next lookup;
- an address literal (`127.0.0.1`, `::1`) is never looked up again.

The transport, for its part, retires a connection `MAX_AGE` seconds after it opened, so
that new connections follow the new addresses.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

REFRESH = 60.0  # seconds between lookups of a name
MAX_AGE = 60.0  # seconds a connection to a name is reused, then replaced by a new one

Lookup = Callable[[str, int], list[Any]]


def _getaddrinfo(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Resolver:
    """The addresses of one host and port, for connections to try in order."""

    def __init__(self, host: str, port: int, lookup: Lookup = _getaddrinfo) -> None:
        self._host, self._port, self._lookup = host, port, lookup
        self.literal = is_literal(host)
        self._addresses: list[Any] = []
        self._bad: set[Any] = set()  # refused a connection since the last lookup
        self._at = 0.0  # when the addresses were looked up
        self._turn = 0
        self._asking = False  # a lookup runs in its thread
        self._answer: list[Any] | None = None  # what it found, till taken up

    def addresses(self) -> list[Any]:
        """The addresses for a new connection: the next in turn first, those that refused
        a connection last. OSError when the name cannot be looked up."""
        if self._answer is not None:
            self._take(self._answer)
        if not self._addresses:
            self._take(self._lookup(self._host, self._port))
        elif not self.literal and not self._asking and time.monotonic() - self._at >= REFRESH:
            self._asking = True
            threading.Thread(target=self._ask, daemon=True, name="rimport-resolve").start()
        good = [a for a in self._addresses if a[4] not in self._bad]
        start = self._turn % len(good) if good else 0
        self._turn += 1
        return good[start:] + good[:start] + [a for a in self._addresses if a[4] in self._bad]

    def refused(self, address: Any) -> None:
        """A connection to `address` failed: try it last until the next lookup."""
        self._bad.add(address[4])

    def failed(self) -> None:
        """Every address failed: look the name up again for the next connection."""
        self._addresses = []

    def _take(self, addresses: list[Any]) -> None:
        self._answer = None
        self._at = time.monotonic()
        if addresses:  # a lookup that found nothing keeps what was known
            self._addresses, self._bad = list(dict.fromkeys(addresses)), set()

    def _ask(self) -> None:
        try:
            found = self._lookup(self._host, self._port)
        except OSError:
            found = []  # the known addresses stand; asked again after REFRESH
        self._answer, self._asking = found, False
