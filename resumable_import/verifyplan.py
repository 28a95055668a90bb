"""How `verify` is to read the table: the plan, the way that costs fewer read units, worked
out from the expected items before any of the table is read."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from .dynamo import TableInfo


@dataclass(frozen=True)
class Plan:
    """How the table will be read, and the read units each way would take (strongly
    consistent: 4 KB a unit, each item rounded up by key, the whole table by a scan)."""

    method: str
    items: int
    by_key: float
    by_scan: float
    why: str
    size: int  # bytes of the expected items as JSON: the table's part of the progress

    def line(self) -> str:
        how = "by key" if self.method == "get" else "by a parallel scan"
        other = self.by_scan if self.method == "get" else self.by_key
        mine = self.by_key if self.method == "get" else self.by_scan
        return (
            f"reading the table {how} ({self.why}): about {mine:,.0f} read unit"
            f"{'' if round(mine) == 1 else 's'} for {self.items:,} item"
            f"{'' if self.items == 1 else 's'}; the other way about {other:,.0f}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "items": self.items, "read_units_by_key": self.by_key,
                "read_units_by_scan": self.by_scan, "why": self.why}  # fmt: skip


def plan_for(
    db: sqlite3.Connection, info: TableInfo, method: str | None, extra: bool, sample: float | None
) -> Plan:
    """By key costs a unit for each 4 KB of each item; a scan, one for each 4 KB of the
    table, which holds at least the dump's items (DynamoDB's own size lags by hours)."""
    items, by_key, size = db.execute(
        "SELECT count(*), coalesce(sum((length(item) + 4095) / 4096), 0),"
        " coalesce(sum(length(item)), 0) FROM expected WHERE dead = 0"
    ).fetchone()
    table = max(info.size_bytes or 0, size if sample is None else size / sample)
    by_scan = float(math.ceil(table / 4096))
    if method:
        why = "as asked"
    elif extra:
        method, why = "scan", "the only way to find extra items"
    else:
        method = "get" if by_key <= by_scan else "scan"
        why = "fewer read units"
    return Plan(method, items, float(by_key), by_scan, why, size)
