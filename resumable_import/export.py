"""A run's dead letters written out as a dump that `rimport start` reads back.

The items file holds nothing but items, so that it can be fixed and imported again as it
is; why each one was refused goes, on request, to a sidecar of JSON Lines in the same
order (`<file>.reasons.jsonl`).

What the ledger keeps differs by how the item was refused (see `DeadLetter`): an item
DynamoDB refused is kept as the DynamoDB JSON that was sent; an element rimport's own
checks refused is kept as the attribute value of the element as it stood in the dump
(`items.kept`). Both come out here as the item they were, in the format asked for. What
a format cannot hold is left out and counted, never written as some other item: binary
and sets in plain JSON (DynamoDB JSON holds them), and elements nested too deep to
decode, which are kept only as their text (the sidecar carries it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import orjson

from . import endpoint as endpoints
from .attributes import NOT_PLAIN_JSON, from_attribute, to_attributes
from .errors import Arg, Command, Text, UsageError
from .hints import command
from .items import ItemError, plain_json
from .ledger import DeadLetter, Ledger, Run
from .reader import items_as
from .requestitems import FORMAT as REQUESTS
from .run import for_reading as reading

FORMATS = ("jsonl", "json", "ddb-json", REQUESTS)
RETRYABLE, NOT_RETRYABLE = "retryable", "not-retryable"
_ANOTHER_FILE = Text("name another file, or pass ", Arg("force", True))
PAGE = 1000  # dead letters read from the ledger at a time: memory stays bounded

# Why a dead letter was left out of the items file.
TOO_DEEP = "nested too deep to decode, which this format needs (its text is in the reasons)"
NOT_PLAIN = "binary or sets, which plain JSON cannot hold (DynamoDB JSON can)"
NOT_TYPED = (
    "not DynamoDB JSON, so not convertible to plain JSON (DynamoDB JSON keeps them as they were)"
)


@dataclass
class ExportResult:
    run: Run
    format: str
    written: int = 0
    left_out: Counter[str] = field(default_factory=Counter)  # why -> how many


class _LeftOut(Exception):
    def __init__(self, why: str) -> None:
        self.why = why


def default_format(run: Run) -> str:
    """Plain JSON Lines for a run that read plain JSON; DynamoDB JSON Lines for one that
    read DynamoDB's own, whose binary and sets plain JSON cannot hold; a request file for
    one that read a request file, whose deletes are no items."""
    if _requests(run):
        return REQUESTS
    return "jsonl" if items_as(run.format) == "json" else "ddb-json"


def _requests(run: Run) -> bool:
    return run.shape.startswith("table:")


def export_dead_letters(
    book: Ledger,
    run: Run,
    out: TextIO,
    *,
    fmt: str | None = None,
    reasons: list[str] | None = None,
    sidecar: TextIO | None = None,
) -> ExportResult:
    """Write the run's pending dead letters, in file order, to `out` as a dump in `fmt`
    (jsonl, json: a JSON array, ddb-json: DynamoDB JSON Lines). `reasons` keeps those of
    these error codes and/or `retryable` / `not-retryable` ones. `sidecar`, if given, gets
    one line per dead letter: its item index, error, and `line` (its place in `out`, from
    1) or `left_out` (why it is not there)."""
    fmt = fmt or default_format(run)
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
    if (fmt == REQUESTS) != _requests(run):
        raise UsageError(
            Text(f"run {run.id}'s dead letters are ",
                 "write requests" if _requests(run) else "items", ", not ",
                 "items" if _requests(run) else "write requests", ": ",
                 Arg("format", fmt), " cannot hold them"),
            Text("leave out ", Arg("format"), f" to write them as {default_format(run)}"),
        )  # fmt: skip
    codes, retryable = _selection(book, run, reasons or [])
    result = ExportResult(run, fmt)
    kind = items_as(run.format)
    if fmt == REQUESTS:  # a request file again, of the run's table: `start` reads it back
        out.write("{" + json.dumps(run.table) + ": [")
    if fmt == "json":
        out.write("[")
    for page in book.pages_of_dead_letters(run.id, size=PAGE, codes=codes, retryable=retryable):
        for letter in page:
            line: int | None = None
            try:
                if fmt == REQUESTS:  # the entry as sent, or as it stood in the file
                    sent = not letter.refused_before_sending
                    text = _dumps(letter.item) if sent else _text(letter, "json", typed=False)
                else:
                    text = _text(letter, kind, typed=fmt == "ddb-json")
            except _LeftOut as e:
                result.left_out[e.why] += 1
                why: str | None = e.why
            else:
                result.written += 1
                line, why = result.written, None
                if fmt in ("json", REQUESTS):
                    out.write(("\n" if line == 1 else ",\n") + text)
                else:
                    out.write(text + "\n")
            if sidecar is not None:
                sidecar.write(json.dumps(_reason(letter, line, why)) + "\n")
    if fmt == "json":
        out.write("\n]\n" if result.written else "]\n")
    if fmt == REQUESTS:
        out.write("\n]}\n" if result.written else "]}\n")
    return result


def export_run(
    run_id: str,
    out: Path | TextIO,
    *,
    fmt: str | None = None,
    reasons: list[str] | None = None,
    with_reasons: bool = False,
    force: bool = False,
    ledger: str | Path | Ledger | None = None,
) -> ExportResult:
    """Export the dead letters of run `run_id` to the file `out` (created for this user
    alone, never half written; with `with_reasons`, beside it its `.reasons.jsonl`), or to
    the open stream `out`."""
    with reading(ledger) as book:
        run = book.run(run_id)
        if not isinstance(out, Path):
            if with_reasons:
                raise UsageError("the reasons go to a file beside the items file: name one")
            return export_dead_letters(book, run, out, fmt=fmt, reasons=reasons)
        with contextlib.ExitStack() as files:
            sidecar = None
            if with_reasons:
                sidecar = files.enter_context(private_output(sidecar_path(out), force=force))
            items = files.enter_context(private_output(out, force=force))
            return export_dead_letters(book, run, items, fmt=fmt, reasons=reasons, sidecar=sidecar)


def _selection(book: Ledger, run: Run, reasons: list[str]) -> tuple[list[str] | None, bool | None]:
    """Error codes (as the ledger spells them, whatever the case given) and retryability
    to keep; a code the run has no pending dead letter of is refused, naming those it has."""
    counts = book.dead_letter_counts(run.id)
    known = {code.lower(): code for by_code in counts.values() for code in by_code}
    codes: list[str] = []
    retryable: set[bool] = set()
    for reason in reasons:
        if reason.lower() in (RETRYABLE, NOT_RETRYABLE):
            retryable.add(reason.lower() == RETRYABLE)
        elif reason.lower() in known:
            codes.append(known[reason.lower()])
        else:
            have = ", ".join(sorted(known.values())) or "none"
            raise UsageError(
                f"run {run.id} has no pending dead letter of reason {reason!r} (it has: {have})",
                f"a reason is an error code, or {RETRYABLE} or {NOT_RETRYABLE}",
            )
    return (codes or None), (retryable.pop() if len(retryable) == 1 else None)


def _text(letter: DeadLetter, kind: str, *, typed: bool) -> str:
    """The item as a line of the output: plain JSON, or DynamoDB JSON if `typed`."""
    stored = letter.item
    if not letter.refused_before_sending:
        item_typed, value = True, stored
    elif type(stored) is dict and list(stored) == ["$json"]:
        # Its text as it stood in the dump, on one line: JSON holds no raw line break
        # inside a string. It can be written only where no conversion is needed.
        if kind == ("ddb-json" if typed else "json"):
            return stored["$json"].replace("\r", " ").replace("\n", " ")
        raise _LeftOut(TOO_DEEP)
    else:
        try:
            value = _plain(stored)  # the element as it stood in the dump
        except (ItemError, RecursionError):
            raise _LeftOut(NOT_TYPED) from None
        if kind == "ddb-export" and type(value) is dict and list(value) == ["Item"]:
            value = value["Item"]
        item_typed = kind != "json"
    if type(value) is not dict:  # not an object: written as it was, refused again as it was
        return _dumps(value)
    if typed and not item_typed:
        return _dumps(to_attributes(value, limits=False))
    if not typed and item_typed:
        try:
            return _dumps({name: _plain(v) for name, v in value.items()})
        except ItemError as e:
            raise _LeftOut(NOT_PLAIN if e.code == NOT_PLAIN_JSON else NOT_TYPED) from None
        except (AttributeError, RecursionError):
            raise _LeftOut(NOT_TYPED) from None
    return _dumps(value)


def _dumps(value: Any) -> str:
    """JSON text with numbers as their digits. orjson, five times as fast, refuses lone
    surrogates (which a refused item may hold) and nesting deeper than 255; the standard
    library's escapes do not mind the one, `plain_json` not the other."""
    try:
        return orjson.dumps(value, default=_number).decode()
    except orjson.JSONEncodeError:
        return plain_json(value)


def _number(value: Any) -> orjson.Fragment:
    if type(value) is Decimal:
        return orjson.Fragment(str(value).encode())
    raise TypeError(type(value).__name__)


def _plain(value: Any) -> Any:
    """An attribute value as plain JSON, as deep as it goes (what rimport kept of an
    element, or a typed item's attribute); ItemError(NOT_PLAIN_JSON) for binary and sets."""
    return from_attribute(value, plain=True, max_depth=math.inf)


def _reason(letter: DeadLetter, line: int | None, why: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "index": letter.index, "code": letter.code, "message": letter.message,
        "attempts": letter.attempts, "retryable": letter.retryable,
    }  # fmt: skip
    if why is None:
        d["line"] = line
    else:
        d["left_out"] = why
        if why == TOO_DEEP:
            d["text"] = letter.item["$json"]
    return d


def fix_commands(
    run: Run, out: str | None = None, fmt: str | None = None
) -> tuple[Command, Command]:
    """The two commands that take a run's dead letters out to a file and, once fixed,
    import that file: for hints."""
    fmt = fmt or default_format(run)
    out = out or f"dead-letters-{run.id}.{'jsonl' if fmt in ('jsonl', 'ddb-json') else 'json'}"
    export = [Arg("out", out)]
    if fmt != default_format(run):
        export.append(Arg("format", fmt))
    load = [] if fmt == REQUESTS else [Arg("table", run.table)]  # a request file names it
    if fmt == "ddb-json":
        load.append(Arg("format", "ddb-json"))
    if run.endpoint != endpoints.DEFAULT:
        load.append(Arg("endpoint", endpoints.redacted(run.endpoint)))
    if run.recorded.allow_remote:
        load.append(Arg("allow_remote", True))
    return (
        command(run, "dead-letters", run.id, args=tuple(export)),
        command(run, "start", out, args=tuple(load)),
    )


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".reasons.jsonl")


@contextlib.contextmanager
def private_output(path: Path, *, force: bool = False) -> Iterator[TextIO]:
    """A new file readable by this user alone (it holds items), there only once complete:
    written beside `path` and moved into place at the end. An existing file is kept
    unless `force`."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists already", _ANOTHER_FILE)
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as e:
        why = e.strerror.lower()
        raise UsageError(f"cannot write {path}: {why}", "name another file") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
        if force:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # refuses, unlike a rename, a file created meanwhile
            os.unlink(temp)
    except FileExistsError:
        raise UsageError(f"{path} exists already", _ANOTHER_FILE) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
