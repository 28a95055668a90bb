"""The hashes that tie a run to its file: whole-file SHA-256 and per-block hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from resumable_import import fingerprint as fp


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "CHECK_BLOCK", 1000)


def test_the_file_hash_is_what_sha256sum_prints(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(bytes(range(256)) * 50)
    whole, blocks = fp.fingerprint(path)
    assert whole == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(blocks) == 13  # 12,800 bytes in blocks of 1,000
    assert fp.block_hashes(path, workers=2) == blocks


def test_any_change_shows_in_the_blocks(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    data = bytearray(bytes(range(256)) * 50)
    path.write_bytes(data)
    before = fp.block_hashes(path)
    data[5_432] ^= 1
    path.write_bytes(data)
    after = fp.block_hashes(path)
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [5]
    path.write_bytes(bytes(data[:-1]) + b"\0" * 2)
    assert fp.block_hashes(path) != before
