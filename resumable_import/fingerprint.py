"""Content hashes that tie a run to the exact bytes it started on."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 4 << 20


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
