"""Open a dump as a byte stream, decompressing it if its first bytes say so.

The file name is never trusted: `dump.json` may be gzip and `dump.json.gz` may not.
Offsets in the checkpoint count decompressed bytes, so `resume` reads up to the
checkpoint again (it must decompress what comes before) but does not parse it. Progress
counts the compressed bytes read, which is what the file's size is made of.

A dump lives somewhere (`Location`): a local file, a stream (standard input, a FIFO, a
process substitution) or an S3 object. A file and an S3 object can be opened as often as
the reader likes; a stream can be read once only, so its first bytes are kept
(`_Rewindable`) while the layout is detected, and the reader then reads on from byte 0
through them into the rest of the stream. A stream's bytes are hashed as they pass, since
they cannot be read again to be hashed.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import sys
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import Arg, InputError, Text

try:  # optional: zstd files need the `zstandard` package
    import zstandard

    _ZSTD_ERRORS: tuple[type[BaseException], ...] = (zstandard.ZstdError,)
except ImportError:  # pragma: no cover - exercised only without the package
    zstandard = None
    _ZSTD_ERRORS = ()

# What a damaged or truncated compressed stream raises, codec by codec.
_STREAM_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, *_ZSTD_ERRORS)


def _zstd(raw: BinaryIO) -> IO[bytes]:
    if zstandard is None:
        raise InputError(
            "the dump is zstd-compressed, and the `zstandard` package is not installed",
            "pip install zstandard, or decompress the file first",
        )
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    return io.BufferedReader(reader, buffer_size=1 << 20)  # for readline


# magic bytes -> (name, how to open a decompressing reader over the raw file)
CODECS: dict[bytes, tuple[str, Callable[[BinaryIO], IO[bytes]]]] = {
    b"\x1f\x8b": ("gzip", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    b"BZh": ("bzip2", lambda raw: bz2.BZ2File(raw, mode="rb")),
    b"\xfd7zXZ\x00": ("xz", lambda raw: lzma.LZMAFile(raw, mode="rb")),  # noqa: SIM115
    b"\x28\xb5\x2f\xfd": ("zstd", _zstd),
}


class _Capped(io.RawIOBase):
    """The first `limit` bytes of a file: a run reads exactly the bytes it hashed at its
    start, so lines appended to a dump while it is imported are not half taken in."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw, self._limit = raw, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._limit - self._raw.tell()
        if left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), left)]
        return self._raw.readinto(view)  # type: ignore[attr-defined,no-any-return]

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()
        super().close()


STREAM_HEAD = 16 << 20
"""Bytes of a stream kept so that the layout can be detected before the items are read."""


class Location:
    """Where a dump lives: a local `file`, a `stream` (read once) or an `s3` object.

    `name` is how the ledger records it (an absolute path, `-` for standard input, the
    s3:// URL); `str()` is how messages name it (the path as given, for a file).
    """

    def __init__(self, text: str | Path) -> None:
        self.given = str(text)
        self.path: Path | None = None
        self._stream: _Rewindable | None = None
        self._s3: Any = None
        if self.given == "-":
            self.kind, self.name = "stream", "-"
        elif self.given.startswith("s3://"):
            from .s3 import S3Object  # boto3's S3 client only when an object is read

            self.kind, self.name = "s3", self.given
            self._s3 = S3Object(self.given)
        else:
            self.path = Path(text)
            self.kind = "stream" if _is_stream(self.path) else "file"
            self.name = str(self.path.absolute() if self.kind == "stream" else self.path.resolve())

    def __str__(self) -> str:
        return "standard input" if self.name == "-" else self.given

    def __fspath__(self) -> str:  # so that a Location still works where a path did
        return str(self.path) if self.path is not None else self.given

    @property
    def seekable(self) -> bool:
        return self.kind != "stream"

    def size(self) -> int | None:
        """The size in bytes (None for a stream, which says so only at its end)."""
        if self.kind == "file":
            assert self.path is not None
            return self.path.stat().st_size
        if self.kind == "s3":
            return int(self._s3.head().size)
        return None

    def identity(self) -> str | None:
        """What tells this S3 object from another at the same URL; None for the others."""
        return self._s3.head().identity if self.kind == "s3" else None

    def open_raw(self, limit: int | None) -> BinaryIO:
        """The raw bytes from byte 0: a fresh reader of a file or an S3 object, or the
        stream read again from its start (while that start is still kept)."""
        if self.kind == "s3":
            return io.BufferedReader(self._s3.open(limit), buffer_size=1 << 20)  # type: ignore[return-value]
        if self.kind == "file":
            assert self.path is not None
            if limit is None:
                return open(self.path, "rb")
            capped = _Capped(open(self.path, "rb", buffering=0), limit)  # noqa: SIM115
            return io.BufferedReader(capped, buffer_size=1 << 20)  # type: ignore[return-value]
        if self._stream is None:
            if self.path is None:
                fd = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115
            else:
                fd = open(self.path, "rb", buffering=0)  # noqa: SIM115
            self._stream = _Rewindable(fd, str(self), STREAM_HEAD)
        self._stream.seek(0)
        return io.BufferedReader(self._stream, buffer_size=1 << 20)  # type: ignore[return-value]

    def finish(self) -> tuple[int, str]:
        """A stream read to its end: its size and 'sha256:<hex>' of every byte of it."""
        assert self._stream is not None
        return self._stream.drain()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.release()


def _is_stream(path: Path) -> bool:
    """A FIFO, a pipe behind /dev/stdin or <(...), a character device: not seekable."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


class _Rewindable(io.RawIOBase):
    """A stream that can go back to byte 0 while its first `keep` bytes are all it has read.

    Detecting a dump's layout opens it several times; a stream is read once, so those
    reads are served from the kept head, and the item reader then reads through the head
    into the rest. Every byte is hashed the one time it comes out of the stream.
    """

    def __init__(self, raw: BinaryIO, name: str, keep: int) -> None:
        self._raw, self._name, self._keep = raw, name, keep
        self._head: bytearray | None = bytearray()
        self._pos = 0
        self.consumed = 0  # bytes taken from the stream
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # back to 0 while the head is kept; else refused with a hint
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        head = self._head
        if head is not None and self._pos < len(head):
            n = min(len(view), len(head) - self._pos)
            view[:n] = head[self._pos : self._pos + n]
            self._pos += n
            return n
        n = self._raw.readinto(view) or 0  # type: ignore[attr-defined]
        data = view[:n]
        self.hash.update(data)
        if head is not None:
            if len(head) + n <= self._keep:
                head += data
            else:
                self._head = None  # the items are being read: the head is not needed again
        self.consumed += n
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence != 0:
            raise io.UnsupportedOperation("a stream has no end to seek from")
        if offset == self._pos:
            return offset
        if self._head is None or offset > len(self._head):
            raise InputError(
                f"{self._name}: the layout of this stream cannot be told from its first "
                f"{self._keep >> 20} MiB, and a stream cannot be read twice",
                Text(
                    "name the layout with ",
                    Arg("format", "jsonl"),
                    ", or ",
                    Arg("items_path", "KEY"),
                    " for a wrapper object",
                ),
            )
        self._pos = offset
        return offset

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """A reader over the stream is done; the stream itself stays open for the next."""

    def drain(self) -> tuple[int, str]:
        """Read what the reader left of the stream (a compressed stream's trailer, say),
        so that the hash covers all of it; (bytes in all, 'sha256:<hex>')."""
        self._head = None
        self._pos = self.consumed
        block = bytearray(1 << 20)
        while self.readinto(block):
            pass
        return self.consumed, f"sha256:{self.hash.hexdigest()}"

    def release(self) -> None:
        self._raw.close()


class PrefixHash:
    """SHA-256 of a stream's (decompressed) bytes from 0 up to a checkpoint, taken as the
    reader passes them and hashed only once that checkpoint is committed: `resume --from`
    reads the committed part of a stream again and compares it with this."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._hash = hashlib.sha256()
        self._done = 0  # bytes hashed
        self._end = 0  # bytes added
        self._pending: deque[bytes] = deque()
        self._skip = 0  # bytes of pending[0] already hashed

    def add(self, at: int, data: bytes) -> None:
        if at != self._end:
            if at != 0:
                return
            self._reset()  # the reader started over (the layout was detected first)
        if data:
            self._pending.append(data)
            self._end += len(data)

    def upto(self, offset: int) -> str | None:
        """'sha256:<hex>' of bytes [0, offset); None if they were not all read."""
        while self._done < offset and self._pending:
            chunk = self._pending[0]
            take = min(len(chunk) - self._skip, offset - self._done)
            self._hash.update(memoryview(chunk)[self._skip : self._skip + take])
            self._done += take
            self._skip += take
            if self._skip == len(chunk):
                self._pending.popleft()
                self._skip = 0
        if self._done != offset:
            return None
        return f"sha256:{self._hash.hexdigest()}"


class Source:
    """A dump opened for reading: decompressed bytes, and how far into the file we are.

    `prefix`, for a stream: told every byte read, to hash the part a checkpoint covers."""

    def __init__(
        self, path: Path | Location, limit: int | None = None, *, prefix: PrefixHash | None = None
    ) -> None:
        self.path = path
        location = path if isinstance(path, Location) else Location(path)
        self._seekable = location.seekable
        self._raw: BinaryIO = location.open_raw(limit)
        self._prefix = prefix
        head = self._raw.read(8)
        self._raw.seek(0)  # a stream too: its head is kept
        self.codec = "none"
        self.stream: IO[bytes] = self._raw
        self._opener: Callable[[BinaryIO], IO[bytes]] | None = None
        self._pos = 0  # decompressed offset
        for magic, (name, opener) in CODECS.items():
            if head.startswith(magic):
                self.codec, self._opener = name, opener
                self.stream = opener(self._raw)
                break

    def seek(self, offset: int) -> None:
        """Move to a decompressed offset (a compressed stream reads its way there)."""
        try:
            if self._opener is None and self._seekable:
                self._pos = self._raw.seek(offset)
                return
            if offset < self._pos:  # not every decompressor can go back: start it over
                if self.stream is not self._raw:
                    self.stream.close()
                self._raw.seek(0)
                self.stream, self._pos = self._raw, 0
                if self._opener is not None:
                    self.stream = self._opener(self._raw)
            while self._pos < offset and self.read(min(offset - self._pos, 1 << 20)):
                pass
        except _STREAM_ERRORS as e:
            raise self.corrupt(e) from None

    def read(self, size: int) -> bytes:
        return self._take(self.stream.read, size)

    def readline(self, limit: int) -> bytes:
        return self._take(self.stream.readline, limit)

    def _take(self, method: Callable[[int], bytes], size: int) -> bytes:
        try:
            data = method(size)
        except _STREAM_ERRORS as e:
            raise self.corrupt(e) from None
        if self._prefix is not None:
            self._prefix.add(self._pos, data)
        self._pos += len(data)
        return data

    def corrupt(self, e: BaseException) -> InputError:
        if self.codec == "none":
            return InputError(f"{self.path}: cannot read the file: {e}", "check the disk and path")
        return InputError(
            f"{self.path}: cannot read the {self.codec} stream after byte {self._raw.tell()} "
            f"of the file: {e}",
            "the file is damaged or cut short; check it with its own tool (e.g. gzip -t)",
        )

    @property
    def bytes_read(self) -> int:
        """Bytes of the file itself consumed so far: compressed bytes for a compressed dump."""
        return self._raw.tell()

    def close(self) -> None:
        if self.stream is not self._raw:
            self.stream.close()
        self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
