"""Deterministic sample dumps: ~1 KB items with nested maps and lists, unicode and
numbers DynamoDB keeps exactly (up to 38 significant digits).

    python tools/make_dump.py OUT --items N [--shape array|object|jsonl] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

WORDS = ["alpha", "ßeta", "gämma", "δέλτα", "эпсилон", "ζήτα", "日本語", "emoji 🚀", "tab\there",
         "quote\"d", "back\\slash", "naïve café"]  # fmt: skip


def item(i: int, rng: random.Random) -> dict[str, Any]:
    digits = rng.randint(1, 38)
    mantissa = rng.randrange(10 ** (digits - 1), 10**digits)
    return {
        "pk": f"item#{i:09d}",
        "n": i,
        "title": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))),
        "price": Decimal(mantissa).scaleb(-rng.randint(0, digits)),
        "ratio": Decimal("0.1"),
        "neg": -rng.randint(0, 10**6),
        "active": rng.random() < 0.5,
        "missing": None,
        "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 5))],
        "profile": {
            "age": rng.randint(1, 99),
            "address": {
                "city": rng.choice(WORDS),
                "geo": [Decimal("-23.5505199"), Decimal("46.6333")],
            },
            "history": [{"at": rng.randint(0, 2**40), "what": rng.choice(WORDS)} for _ in range(3)],
            "bio": "lorem ipsum dolor sit amet " * rng.randint(10, 25),
        },
        "empty_map": {},
        "empty_list": [],
    }


def items(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(count):
        yield item(i, rng)


def encode(value: Any) -> str:
    """JSON text with every Decimal written out exactly as a number."""
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)}: {encode(v)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def write(path: Path, count: int, shape: str = "array", seed: int = 7) -> Path:
    """Write `count` items in the given shape; return the path."""
    write_marked(path, count, shape, seed)
    return path


def write_marked(
    path: Path, count: int, shape: str = "array", seed: int = 7, *, mark: int | None = None
) -> int | None:
    """Write `count` items; return the byte offset just past item `mark - 1`, if asked.

    Items cycle through 1,000 distinct bodies with their own key and index, so a
    multi-GB dump takes seconds to write.
    """
    rng = random.Random(seed)
    tails = []
    for i in range(min(count, 1000)):
        it = item(i, rng)
        head = encode({"pk": it["pk"], "n": it["n"]})
        tails.append(encode(it)[len(head) - 1 :].encode("utf-8"))
    if shape == "object":
        opening, sep, closing = (
            f'{{"Count": {count}, "Items": [\n',
            b",\n",
            f'\n], "ScannedCount": {count}}}\n',
        )
    elif shape == "array":
        opening, sep, closing = "[\n", b",\n", "\n]\n"
    else:
        opening, sep, closing = "", b"\n", "\n"
    offset = None
    with open(path, "wb", buffering=1 << 20) as f:
        pos = f.write(opening.encode())
        for i in range(count):
            if i:
                pos += f.write(sep)
            pos += f.write(b'{"pk": "item#%09d", "n": %d' % (i, i))
            pos += f.write(tails[i % len(tails)])
            if mark is not None and i == mark - 1:
                offset = pos
        f.write(closing.encode())
    return offset


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a deterministic sample dump.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--shape", choices=["array", "object", "jsonl"], default="array")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write(args.out, args.items, args.shape, args.seed)


if __name__ == "__main__":
    main()
