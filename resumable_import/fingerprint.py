"""Content hashes that tie a run to the exact bytes it started on.

A run records the SHA-256 of the whole file (what `sha256sum` prints, for people) and of
every 64 MiB block (for `resume`). SHA-256 cannot be split across cores, but blocks can:
hashlib lets go of the GIL while it hashes, so two threads check a 2.5 GB dump in about
one second instead of two.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_BLOCK = 4 << 20
CHECK_BLOCK = 64 << 20


def file_hash(path: str | Path, limit: int | None = None) -> str:
    """'sha256:<hex>' of the file's first `limit` bytes (all of it by default).

    Plain SHA-256 so that a user can check it with `sha256sum`.
    """
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(_BLOCK if left is None else min(_BLOCK, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return f"sha256:{h.hexdigest()}"


def _block_hash(path: str | Path, number: int, size: int) -> str:
    with open(path, "rb") as f:
        f.seek(number * CHECK_BLOCK)
        h = hashlib.sha256()
        left = min(CHECK_BLOCK, size - number * CHECK_BLOCK)
        while left and (data := f.read(min(_BLOCK, left))):
            h.update(data)
            left -= len(data)
    return h.hexdigest()


def block_hashes(path: str | Path, workers: int = 2, size: int | None = None) -> list[str]:
    """SHA-256 of each 64 MiB block of the file's first `size` bytes (all of it by
    default), `workers` blocks at a time."""
    size = os.path.getsize(path) if size is None else size
    count = max(1, -(-size // CHECK_BLOCK))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda n: _block_hash(path, n, size), range(count)))


def fingerprint(path: str | Path, size: int | None = None) -> tuple[str, list[str]]:
    """The hash and the block hashes of the file's first `size` bytes (all of it by
    default), computed side by side: exactly the bytes a run reads, should the file grow
    meanwhile."""
    size = os.path.getsize(path) if size is None else size
    with ThreadPoolExecutor(1) as pool:
        blocks = pool.submit(block_hashes, path, 1, size)
        return file_hash(path, size), blocks.result()
