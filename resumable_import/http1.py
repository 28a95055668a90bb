"""HTTP/1.1 for `transport`: each request's head written out, each answer read by httptools.

The answer is parsed by httptools, the binding of llhttp (Node's HTTP parser, in C): the
framing rules of RFC 9112 that a client must get right (Content-Length, chunked bodies with
extensions and trailers, a body that ends where the connection does, 1xx answers before the
real one, HTTP/1.0 keep-alive) are its job. It replaced h11, whose pure-Python framing cost
about 70 µs a request, a tenth of rimport's CPU per item, against 3 µs here. llhttp is
strict where h11 was lenient: an answer with both Content-Length and Transfer-Encoding, or
a header folded onto a second line, is refused as RFC 9112 says a client ought to (both
are how responses are smuggled), so such an answer is a garbled one and its connection
is closed.

The request side needs no parser: rimport writes the same few headers on every request,
all of them ASCII, and refuses a line break in any value (a header cannot be smuggled in
through, say, a session token).
"""

from __future__ import annotations

import httptools


class Garbled(Exception):
    """An answer that is not HTTP/1.1 (or stopped before its end); its connection is done."""


def request_head(path: str, headers: list[tuple[str, str]]) -> bytes:
    """The head of a POST to `path`, ending in the blank line its body follows."""
    lines = [f"POST {path} HTTP/1.1"]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"the {name} header holds a line break or a NUL")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("ascii")


class Answer:
    """The answer to a connection's current request, as it arrives; `reset` before each
    request. `complete` once the whole answer is in; `keep_alive` whether the connection
    may then carry another request."""

    __slots__ = (
        "_framed", "_head", "_parser", "chunks", "complete", "crc", "keep_alive", "reason",
        "status",
    )  # fmt: skip

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.reset()

    def reset(self) -> None:
        self.status, self.reason, self.crc = 0, "", None
        self.chunks: list[bytes] = []
        self.complete = self.keep_alive = False
        self._head = False  # its headers are all in (what follows are a body and trailers)
        self._framed = False  # it said its length, or that it comes in chunks

    def feed(self, data: bytes) -> None:
        """Take in bytes of the answer; Garbled if they are not HTTP."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # 101 Switching Protocols, which nobody asked
            if not self.complete:
                raise Garbled("the server switched protocols") from None
            self.keep_alive = False
        except httptools.HttpParserError as e:
            if not self.complete:
                raise Garbled(str(e) or type(e).__name__) from None
            self.keep_alive = False  # junk after a whole answer: the answer stands

    def closed(self) -> None:
        """The server closed the connection: that ends an answer whose body runs to the
        close; any other answer not complete yet is Garbled."""
        if self._head and not self._framed and not self.complete:
            self.complete, self.keep_alive = True, False
        if not self.complete:
            raise Garbled("closed before the answer ended")

    # -- httptools' callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the answer, which nothing asked for
            self.keep_alive = False

    def on_status(self, reason: bytes) -> None:
        if not self.complete:  # the status line may come in pieces, each its own call
            self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head or self.complete:
            return  # a trailer, or what follows the answer
        name = name.lower()
        if name == b"x-amz-crc32":
            self.crc = value.decode("latin-1")
        elif name == b"content-length" or name == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._head = True

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.status < 200:  # 100 Continue and the like: the answer follows
            self.reset()
            return
        self.complete = True
