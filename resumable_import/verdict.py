"""What `verify` found: the counts, the first differences, and how the table was read.

Kept apart from the ways of reading (`verifyget`, `verifyscan`) so each fills one result
and none reaches back into the command that ties them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .records import Verification

SHOWN = 20  # differences kept in the result, in file order


@dataclass(frozen=True)
class Difference:
    """An item not as the dump has it: its index in the dump, its key (as DynamoDB JSON
    key attributes), and the attributes that differ; None for a missing item.
    `not_deleted`: a request file deletes the key last, and the table still holds it."""

    index: int
    key: dict[str, Any]
    attributes: list[str] | None  # None: the item is missing
    not_deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key, "missing": self.attributes is None,
                "attributes": self.attributes or [], "not_deleted": self.not_deleted}  # fmt: skip


@dataclass
class VerifyResult:
    """What reading the table back found. `items`: keys the dump leaves in the table at
    the end (the later of two elements with one key counted once); `expected_missing`:
    dead letters, expected absent; `extra`: None unless asked for. `read_units`: the read
    capacity DynamoDB said it consumed (`read_units_measured`), or else an estimate from
    the items' sizes. `sample`: the share of the keys checked (None: all of them); `plan`:
    how the table was to be read, and what each way would cost; `repaired`: items written
    again (None: no repair asked for), after which `unrepaired` of them still differ. The counts
    are what was found before repairing."""

    run_id: str
    table: str
    items: int = 0
    identical: int = 0
    missing: int = 0
    different: int = 0
    expected_missing: int = 0
    extra: int | None = None
    method: str = "get"
    read_units: float = 0.0
    read_units_measured: bool = False
    differences: list[Difference] = field(default_factory=list)
    extra_keys: list[dict[str, Any]] = field(default_factory=list)  # the first 20 extra
    elapsed: float = 0.0
    recorded: bool = False  # kept in the ledger, for `status` (not in a read-only one)
    sample: float | None = None
    plan: dict[str, Any] | None = None
    repaired: int | None = None
    unrepaired: int | None = None
    dry_run: bool = False  # only the plan: nothing of the table read

    @property
    def ok(self) -> bool:
        """The table holds the dump: as found, or once repaired."""
        if self.extra:
            return False
        if self.repaired is not None:
            return not self.unrepaired
        return not (self.missing or self.different)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "differences"}
        d["read_units"] = round(self.read_units, 1)
        d["read_units_estimated"] = not self.read_units_measured
        del d["read_units_measured"]
        d["differences"] = [x.as_dict() for x in self.differences]
        return d

    def verification(self) -> Verification:
        """The counts, as the ledger keeps them."""
        return Verification(
            self.method, self.items, self.identical, self.missing, self.different, self.extra,
            self.expected_missing, round(self.read_units, 1), not self.read_units_measured,
            round(self.elapsed, 1), sample=self.sample, repaired=self.repaired,
            unrepaired=self.unrepaired,
        )  # fmt: skip
