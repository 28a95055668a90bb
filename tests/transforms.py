"""Transforms the tests hand to rimport as Python functions. A module of its own, light to
import: the reader process imports it again by name."""

from __future__ import annotations

from typing import Any


def split(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Thirty items of each element: more than one batch holds."""
    return [{"pk": f"{item['pk']}#{n}", "n": n} for n in range(30)]
