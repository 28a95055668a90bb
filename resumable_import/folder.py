"""A folder of dumps, or of a DynamoDB export to S3: which files, into which tables.

Each file is its own run, so a folder resumes file by file with the machinery a single
file already has, and `status` shows each file's progress.

Table names, when no --table is given: the file name up to its first dot, without a
trailing `-dump` or `_dump` (`messages-dump.json.gz` -> `messages`, `users.2024-06.jsonl`
-> `users`). An export folder names its table in `manifest-summary.json`, a dynamodump
backup each table by its folder (`backup.py`).

A folder may also be an S3 prefix (`s3://BUCKET/PREFIX/`): its objects stand where a local
folder's files stand (`S3Key`), and each is read from S3 as a single `s3://` dump is.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import backup, s3
from .dynamo import connect, create_as, resolve_endpoint
from .endpoint import check as check_endpoint
from .errors import (
    Arg,
    Command,
    InputError,
    RimportError,
    RunBusyError,
    RunInterrupted,
    TableError,
    TableMissingError,
    Text,
    UsageError,
)
from .hooks import Hooks
from .ledger import Ledger
from .loop import ImportResult, finished, stopped_before_writing
from .options import ImportOptions, ResumeOptions
from .run import import_file, resume_run, using_ledger
from .sources import Location, Source
from .transform import load
from .writer import RetryPolicy

# File names taken from a folder when no --pattern is given: JSON, JSON Lines, Ion,
# compressed or not.
DUMP_NAME = re.compile(r"[^.].*\.(json|jsonl|ndjson|ion)(\.(gz|bz2|xz|zst))?", re.IGNORECASE)
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
SUMMARY, FILES = "manifest-summary.json", "manifest-files.json"
# An export's outputFormat -> the format its data files are read in.
EXPORT_FORMATS = {"DYNAMODB_JSON": "ddb-export", "ION": "ion"}


class S3Key(str):
    """An s3:// URL standing where a folder's `Path` stands: a name, `/`, and `resolve()`
    (the URL itself, which is how a run on S3 is recorded)."""

    @property
    def name(self) -> str:
        return self.rstrip("/").rpartition("/")[2]

    def resolve(self) -> S3Key:
        return self

    def __truediv__(self, part: str) -> S3Key:
        return S3Key(self.rstrip("/") + "/" + part)


def folder_of(where: str | Path) -> Path | S3Key:
    """A local folder's Path, or an S3 prefix as an S3Key."""
    text = str(where)
    return S3Key(text) if text.startswith("s3://") else Path(where)


@dataclass(frozen=True)
class Entry:
    path: Path | S3Key
    table: str
    expected_items: int | None = None  # what the export's manifest says the file holds
    problem: InputError | None = None  # found before reading it: the file is not imported


@dataclass(frozen=True)
class Plan:
    folder: Path | S3Key
    entries: list[Entry]
    fmt: str  # the format to read every file in: ddb-export or ion for an export
    expected_items: int | None = None  # the export's total, from manifest-summary.json
    items_path: str | None = None  # where every file holds its items: a backup's pages
    schemas: dict[str, backup.TableSchema] = field(default_factory=dict)  # a backup's tables


@dataclass
class FileOutcome:
    entry: Entry
    action: str  # imported, resumed, skipped (imported before, unchanged), empty or failed
    result: ImportResult | None = None
    error: RimportError | None = None


@dataclass
class FolderResult:
    plan: Plan
    files: list[FileOutcome] = field(default_factory=list)
    count_error: str | None = None  # an export whose items do not add up to its manifest

    @property
    def items(self) -> int:
        return sum(f.result.items_committed for f in self.files if f.result)


def empty_partition(entry: Entry) -> bool:
    """An export's data file that its manifest lists with no items and that holds none:
    DynamoDB writes one for each empty partition of the table. Nothing to import, and not
    an error (as an empty dump of one's own is)."""
    if entry.expected_items != 0:
        return False
    with Source(Location(entry.path)) as f:
        return not f.read(1 << 16).strip()


def table_for(path: Path | S3Key) -> str:
    """The table a file goes to when none is named (the rule in the module docstring)."""
    name = path.name.split(".", 1)[0]
    name = re.sub(r"[-_]dump$", "", name, flags=re.IGNORECASE)
    if not TABLE_NAME.fullmatch(name):
        raise UsageError(
            f"{path}: {name!r}, taken from the file name, is not a valid table name",
            Text("name the table with ", Arg("table"), " (3 to 255 of A-Z a-z 0-9 _ - .)"),
        )
    return name


def plan(folder: Path | S3Key, table: str | None, pattern: str | None, fmt: str = "auto") -> Plan:
    """What `start DIR` imports, in order: the data files of an export, or the dumps in it."""
    objects = None
    if isinstance(folder, S3Key):
        folder = S3Key(folder.rstrip("/") + "/")
        objects = s3.listing(folder)
    export = SUMMARY in objects if objects is not None else (folder / SUMMARY).is_file()
    if export:
        if pattern:
            raise UsageError(Text(Arg("pattern"), " does not go with an export folder: its "
                                  "manifest lists the files"))  # fmt: skip
        return _export(folder, table, fmt, objects)
    if objects is None and backup.table_folders(folder):  # type: ignore[arg-type]
        if pattern:
            raise UsageError(Text(Arg("pattern"), " does not go with a dynamodump backup: its "
                                  "pages are data/*.json"))  # fmt: skip
        tables = backup.read_backup(folder, table, fmt)  # type: ignore[arg-type]
        entries = [Entry(page, t.table) for t in tables for page in t.pages]
        schemas = {t.table: t.schema for t in tables if t.schema}
        return Plan(folder, entries, backup.FORMAT, items_path=backup.ITEMS, schemas=schemas)

    def wanted(p: Path | S3Key) -> bool:
        return bool(fnmatch.fnmatch(p.name, pattern) if pattern else DUMP_NAME.fullmatch(p.name))

    if objects is not None:  # the objects right under the prefix, as a folder's files
        files: list[Path | S3Key] = [folder / k for k in objects if k and "/" not in k]
    else:
        files = [p for p in folder.iterdir() if p.is_file()]  # type: ignore[union-attr]
    names = sorted(p for p in files if wanted(p))
    if not names:
        what = f"matching {pattern!r}" if pattern else "named *.json, *.jsonl, *.ndjson or *.ion"
        raise InputError(
            f"{folder}: no files {what}",
            Text(
                "choose the files with ", Arg("pattern", "GLOB"), ", e.g. ", Arg("pattern", "*.txt")
            ),
        )
    return Plan(folder, [Entry(p, table or table_for(p)) for p in names], fmt)


def _export(
    folder: Path | S3Key, table: str | None, fmt: str, objects: dict[str, tuple[int, str]] | None
) -> Plan:
    summary = next(iter(_manifest(folder / SUMMARY)), None)
    if not isinstance(summary, dict):
        raise InputError(f"{folder / SUMMARY} is empty or not an object", "download it again")
    output = str(summary.get("outputFormat", "DYNAMODB_JSON"))
    read_as = EXPORT_FORMATS.get(output)
    if read_as is None:
        raise InputError(
            f"{folder}: the export is in {output} format",
            "rimport reads exports in DYNAMODB_JSON or ION format; export the table again "
            "with one of them",
        )
    if fmt not in ("auto", read_as):
        raise UsageError(
            f"{folder} is a DynamoDB export in {output} format, read as {read_as}, not as {fmt}"
        )
    if table is None:
        table = str(summary.get("tableArn", "")).rpartition("table/")[2]
        if not table:
            raise UsageError(
                f"{folder / SUMMARY} names no table (tableArn)", Text("pass ", Arg("table"))
            )
    entries = []
    for line in _manifest(folder / FILES):
        if not isinstance(line, dict) or "dataFileS3Key" not in line:
            raise InputError(
                f"{folder / FILES}: a line names no dataFileS3Key", "download it again"
            )
        key = str(line["dataFileS3Key"])
        path = folder / "data" / Path(key).name
        count = int(line["itemCount"]) if "itemCount" in line else None
        entries.append(Entry(path, table, count, _missing_or_damaged(path, key, line, objects)))
    expected = summary.get("itemCount")
    return Plan(folder, sorted(entries, key=lambda e: e.path), read_as,
                int(expected) if expected is not None else None)  # fmt: skip


def _manifest(path: Path | S3Key) -> list[dict[str, Any]]:
    """A manifest: one JSON object (the summary) or JSON Lines of them (the files)."""
    try:
        if isinstance(path, S3Key):
            text = s3.read_small(path).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read this manifest ({e})", "download it again") from None


def _missing_or_damaged(
    path: Path | S3Key,
    key: str,
    line: dict[str, Any],
    objects: dict[str, tuple[int, str]] | None = None,
) -> InputError | None:
    """Checked against the manifest before import: a partial download is not imported.

    In S3 the MD5 is the object's ETag, when it was uploaded in one part (a multipart
    ETag is not an MD5, and is not checked)."""
    if objects is not None:
        found = objects.get(f"data/{path.name}")
        if found is None:
            return InputError(
                f"{path}: listed in {FILES} as {key}, but not in the folder",
                "copy the whole export folder (data/ and both manifests) again",
            )
        etag = found[1].strip('"')
        expected = line.get("md5Checksum")
        if expected and "-" not in etag and base64.b64decode(expected).hex() != etag:
            return InputError(
                f"{path}: its MD5 does not match {FILES} (a partial or damaged copy?)",
                Text("copy that object again, then run the same ", Command("start"), " again"),
            )
        return None
    assert isinstance(path, Path)
    if not path.is_file():
        return InputError(
            f"{path}: listed in {FILES} as {key}, but not in the folder",
            "download the whole export folder (data/ and both manifests) again",
        )
    if expected := line.get("md5Checksum"):
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if base64.b64encode(h.digest()).decode() != expected:
            return InputError(
                f"{path}: its MD5 does not match {FILES} (a partial or damaged download?)",
                Text("download that file again, then run the same ", Command("start"), " again"),
            )
    return None


def _create_described(todo: Plan, options: ImportOptions, client: Any) -> None:
    """`create_table` without keys: the tables a backup describes, created as its
    schema.json says if missing; anything else needs the key to create a table with."""
    if options.create_keys:
        for name, schema in todo.schemas.items():
            if tuple(options.create_keys) != schema.keys:
                said = ", ".join(f"{k.name}:{k.type}" for k in schema.keys)
                raise UsageError(
                    Text(f"the backup's schema.json keys table {name!r} by {said}; ",
                         Arg("key"), " would create it keyed otherwise, and items that share "
                         "only part of that key would overwrite each other"),
                    Text("leave out ", Arg("key"), ": ", Arg("create_table", True),
                         " alone creates each table as its schema.json says"),
                )  # fmt: skip
        return
    if not options.create_table:
        return
    if not todo.schemas:
        raise UsageError(
            Text(
                Arg("create_table"),
                " needs ",
                Arg("key"),
                " (only a dynamodump backup's schema.json says the key itself)",
            ),
            Text("name the key the items have, e.g. ", Arg("key", "id:S")),
        )
    where = resolve_endpoint(options.endpoint)
    check_endpoint(where, options.allow_remote)
    client = client or connect(where, options.region, profile=options.profile).client
    for name in dict.fromkeys(e.table for e in todo.entries):
        if schema := todo.schemas.get(name):
            create_as(client, backup.create_request(name, schema.description), where)


def import_folder(
    folder: str | Path,
    table: str | None = None,
    options: ImportOptions = ImportOptions(),
    hooks: Hooks = Hooks(),
    *,
    pattern: str | None = None,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> FolderResult:
    """Import every dump of a folder, or every data file of an export, each as its own run.

    Files whose last run into their table completed on the same bytes are skipped; files
    with an unfinished run are resumed, so the same call after a crash finishes the job
    without writing anything twice. `options.new` starts every file afresh. A file that
    cannot be read is reported and the others still import; a DynamoDB failure or Ctrl-C
    stops the whole folder. `options` go to `import_file`, but for the format, which an
    export's manifest may settle; an unfinished run resumes only with the transform it
    started with, and with the write settings it recorded.
    """
    folder = folder_of(folder)
    s3.use_profile(options.profile)  # an s3:// folder is listed with the profile's keys
    todo = plan(folder, table, pattern, options.format)
    folder = todo.folder
    outcome = FolderResult(todo)
    _create_described(todo, options, client)
    if options.transform is not None:  # once, and refused before any file is touched
        options = replace(options, transform=load(options.transform))
    each = replace(options, format=todo.fmt, items_path=todo.items_path or options.items_path)
    again = ResumeOptions(transform=options.transform, profile=options.profile)
    with using_ledger(ledger) as book:
        for entry in todo.entries:
            if hooks.on_file:
                hooks.on_file(entry)
            done = FileOutcome(entry, "failed")
            outcome.files.append(done)
            try:
                if entry.problem:
                    raise entry.problem
                if empty_partition(entry):
                    done.action = "empty"
                    continue
                path = str(entry.path.resolve())
                last = None if options.new else book.latest_run(path, entry.table)
                if last and not finished(last) and not stopped_before_writing(last):
                    done.result = resume_run(last.id, again, hooks, ledger=book, client=client,
                                             retry=retry)  # fmt: skip
                    done.action = "resumed"
                else:  # a file imported already (read alike, same table) is skipped there
                    done.result = import_file(
                        entry.path, entry.table, each, hooks, ledger=book, client=client,
                        retry=retry, folder=str(folder.resolve()),
                    )  # fmt: skip
                    done.action = "skipped" if done.result.imported_before else "imported"
            except (InputError, TableError, RunBusyError) as e:
                if isinstance(e, TableMissingError) and entry.table in todo.schemas:
                    e.param = None  # not a key to give: the backup says it
                    e.hint = Text("create it as the backup's schema.json describes it: pass ",
                                  Arg("create_table", True), " alone")  # fmt: skip
                done.error = e
                continue
            except RunInterrupted as e:
                again = Command("start", (str(folder),))
                e.hint = Text("run the same ", again, " again to continue")
                raise
            if (
                entry.expected_items is not None
                and done.result.items_committed != entry.expected_items
            ):
                done.error = InputError(
                    f"{entry.path}: {done.result.items_committed:,} items read, but the manifest "
                    f"lists {entry.expected_items:,}"
                )
    complete = not any(f.error for f in outcome.files)
    if todo.expected_items is not None and complete and outcome.items != todo.expected_items:
        outcome.count_error = (
            f"{folder}: {outcome.items:,} items read in all, but {SUMMARY} counts "
            f"{todo.expected_items:,}"
        )
    return outcome
