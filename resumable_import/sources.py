"""Open a dump as a byte stream, decompressing it if its first bytes say so.

The file name is never trusted: `dump.json` may be gzip and `dump.json.gz` may not.
Offsets in the checkpoint count decompressed bytes, so `resume` reads up to the
checkpoint again (it must decompress what comes before) but does not parse it. Progress
counts the compressed bytes read, which is what the file's size is made of.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import InputError

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


class Source:
    """A dump opened for reading: decompressed bytes, and how far into the file we are."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        self.path = path
        if limit is None:
            self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by close())
        else:
            capped = _Capped(open(path, "rb", buffering=0), limit)  # noqa: SIM115
            self._raw = io.BufferedReader(capped, buffer_size=1 << 20)  # type: ignore[assignment]
        head = self._raw.read(8)
        self._raw.seek(0)
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
            if self._opener is None:
                self._pos = self._raw.seek(offset)
                return
            if offset < self._pos:  # not every decompressor can go back: start it over
                self.stream.close()
                self._raw.seek(0)
                self.stream, self._pos = self._opener(self._raw), 0
            while self._pos < offset and (
                chunk := self.stream.read(min(offset - self._pos, 1 << 20))
            ):
                self._pos += len(chunk)
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
