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
    with open(path, "w", encoding="utf-8") as f:
        if shape == "object":
            f.write(f'{{"Count": {count}, "Items": [\n')
        elif shape == "array":
            f.write("[\n")
        for i, it in enumerate(items(count, seed)):
            if shape == "jsonl":
                f.write(encode(it) + "\n")
            else:
                f.write(("" if i == 0 else ",\n") + encode(it))
        if shape == "object":
            f.write(f'\n], "ScannedCount": {count}}}\n')
        elif shape == "array":
            f.write("\n]\n")
    return path


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
