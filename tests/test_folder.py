"""Folders of dumps and export folders: one run per file, skip what is done, resume what is
not, and an export's items round-trip into another table exactly."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import signal
import time
from itertools import count
from pathlib import Path
from typing import Any

import make_dump
import pytest
from conftest import assert_table_equals, dump_items, kill_when, rimport
from test_crash import spawn

from resumable_import.errors import InputError, UsageError
from resumable_import.folder import plan, table_for
from resumable_import.ledger import Ledger

_folders = count()


def test_table_names_come_from_file_names() -> None:
    assert table_for(Path("messages-dump.json.gz")) == "messages"
    assert table_for(Path("users.2024-06.jsonl")) == "users"
    assert table_for(Path("Orders_DUMP.json")) == "Orders"
    with pytest.raises(UsageError, match="'ab', taken from the file name, is not a valid"):
        table_for(Path("ab.json"))


def test_a_folder_lists_its_dumps_in_order(tmp_path: Path) -> None:
    for name in ("bbb-dump.jsonl.gz", "aaa.json", "ccc.ndjson.zst", "notes.txt", ".hidden.json"):
        (tmp_path / name).write_text("[]")
    (tmp_path / "sub.json").mkdir()
    todo = plan(tmp_path, None, None)
    assert [(e.path.name, e.table) for e in todo.entries] == [
        ("aaa.json", "aaa"), ("bbb-dump.jsonl.gz", "bbb"), ("ccc.ndjson.zst", "ccc"),
    ]  # fmt: skip
    assert [e.path.name for e in plan(tmp_path, "t", "*.txt").entries] == ["notes.txt"]
    with pytest.raises(InputError, match=r"no files matching '\*\.csv'"):
        plan(tmp_path, "t", "*.csv")


# -- export folders ---------------------------------------------------------------------


def write_export(ddb: Any, table: str, folder: Path, parts: int = 3) -> int:
    """Write the table as an export to S3 lays it out: manifests and gzip data files of
    `{"Item": ...}` lines, binary as base64. Returns the number of items."""
    export_id = "01700000000000-abcd1234"
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table)
             for i in page["Items"]]  # fmt: skip
    (folder / "data").mkdir(parents=True)
    (folder / "_started").write_bytes(b"")
    files = []
    for n in range(parts):
        lines = [json.dumps({"Item": i}, default=lambda b: base64.b64encode(b).decode()) + "\n"
                 for i in items[n::parts]]  # fmt: skip
        name = f"{hashlib.sha1(str(n).encode()).hexdigest()[:26]}.json.gz"
        data = gzip.compress("".join(lines).encode())
        (folder / "data" / name).write_bytes(data)
        files.append({
            "itemCount": len(lines),
            "md5Checksum": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "etag": hashlib.md5(data).hexdigest(),
            "dataFileS3Key": f"AWSDynamoDB/{export_id}/data/{name}",
        })  # fmt: skip
    (folder / "manifest-files.json").write_text("".join(json.dumps(f) + "\n" for f in files))
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}"
    (folder / "manifest-summary.json").write_text(json.dumps({
        "version": "2020-06-30", "exportArn": f"{arn}/export/{export_id}", "tableArn": arn,
        "itemCount": len(items), "outputFormat": "DYNAMODB_JSON",
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
    }))  # fmt: skip
    return len(items)


def typed_scan(ddb: Any, table: str) -> dict[str, Any]:
    """Every item as DynamoDB returned it, with set members in a stable order."""

    def normal(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: sorted(v) if k in ("SS", "NS", "BS") else normal(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [normal(v) for v in value]
        return value

    pages = ddb.get_paginator("scan").paginate(TableName=table)
    return {i["pk"]["S"]: normal(i) for page in pages for i in page["Items"]}


def test_an_exported_table_round_trips_through_its_export_folder(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump = make_dump.write(tmp_path / "plain.json", 2_000)
    typed = tmp_path / "typed.jsonl"
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    typed.write_text("".join(json.dumps({
        "pk": {"S": f"typed{i}"}, "b": {"B": b64(bytes([i, 0, 255]))},
        "ss": {"SS": ["x", f"y{i}"]}, "ns": {"NS": ["1", "2.5", str(i + 3)]},
        "bs": {"BS": [b64(b"\x00\x01"), b64(b"%d" % i)]},
    }) + "\n" for i in range(50)))  # fmt: skip
    common = ("--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert rimport("start", dump, *common).returncode == 0
    assert rimport("start", typed, *common, "--format", "ddb-json").returncode == 0
    export = tmp_path / "export"
    total = write_export(ddb, table, export)
    assert total == 2_050

    second = f"{table}-copy"
    out = rimport("start", export, "--table", second, "--endpoint", endpoint, "--ledger", ledger,
                  "--create-table", "--key", "pk:S")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 3  # one run id per data file
    assert f"export: 3 of 3 files done, {total:,} items read" in out.stderr
    assert typed_scan(ddb, second) == typed_scan(ddb, table)

    again = rimport("start", export, "--table", second, "--endpoint", endpoint, "--ledger", ledger)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "" and again.stderr.count("skipped: imported by run") == 3


def test_an_export_that_does_not_add_up_is_an_error(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump = make_dump.write(tmp_path / "plain.json", 300)
    assert rimport("start", dump, "--table", table, "--endpoint", endpoint,
                   "--ledger", ledger).returncode == 0  # fmt: skip
    export = tmp_path / "export"
    write_export(ddb, table, export, parts=2)
    summary = json.loads((export / "manifest-summary.json").read_text())
    (export / "manifest-summary.json").write_text(json.dumps({**summary, "itemCount": 301}))
    out = rimport("start", export, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 2
    assert "error: " in out.stderr
    assert "300 items read in all, but manifest-summary.json counts 301" in out.stderr


def test_the_empty_partitions_of_an_export_are_neither_imported_nor_errors(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    """DynamoDB writes a data file, empty, for each empty partition of the table."""
    dump = make_dump.write(tmp_path / "plain.json", 3)
    assert rimport("start", dump, "--table", table, "--endpoint", endpoint,
                   "--ledger", ledger).returncode == 0  # fmt: skip
    export = tmp_path / "export"
    assert write_export(ddb, table, export, parts=5) == 3  # two of the five files are empty
    checked = rimport("validate", export, "--table", table, "--endpoint", endpoint)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("empty partition of the export") == 2
    out = rimport("start", export, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("empty: an empty partition of the export") == 2
    assert "5 of 5 files done, 3 items read" in out.stderr


def test_an_export_folder_checks_its_files_against_the_manifest(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "data").mkdir(parents=True)
    good, bad = (gzip.compress(b'{"Item": {"pk": {"S": "a"}}}\n') for _ in range(2))
    (export / "data" / "good.json.gz").write_bytes(good)
    (export / "data" / "bad.json.gz").write_bytes(bad[:-3])  # a partial download
    md5 = base64.b64encode(hashlib.md5(good).digest()).decode()
    (export / "manifest-files.json").write_text("".join(
        json.dumps({"itemCount": 1, "md5Checksum": md5, "dataFileS3Key": f"AWSDynamoDB/x/data/{n}"})
        + "\n" for n in ("good.json.gz", "bad.json.gz", "gone.json.gz")
    ))  # fmt: skip
    (export / "manifest-summary.json").write_text(json.dumps(
        {"tableArn": "arn:aws:dynamodb:eu-west-1:1:table/Music", "itemCount": 3}
    ))  # fmt: skip
    todo = plan(export, None, None)
    assert todo.fmt == "ddb-export" and todo.expected_items == 3
    problems = {e.path.name: e.problem and e.problem.message for e in todo.entries}
    assert {e.table for e in todo.entries} == {"Music"}
    assert problems["good.json.gz"] is None
    assert "bad.json.gz: its MD5 does not match manifest-files.json" in str(problems["bad.json.gz"])
    assert "gone.json.gz: listed in manifest-files.json" in str(problems["gone.json.gz"])
    (export / "manifest-summary.json").write_text(json.dumps({"outputFormat": "PARQUET"}))
    with pytest.raises(InputError, match="the export is in PARQUET format"):
        plan(export, None, None)
    (export / "manifest-summary.json").write_text("")
    with pytest.raises(InputError, match=r"manifest-summary\.json is empty or not an object"):
        plan(export, None, None)


# -- folders of dumps against DynamoDB Local ----------------------------------------------


def dump_folder(tmp_path: Path, items: int) -> tuple[Path, list[tuple[Path, str]]]:
    """Three dumps of `items` each (array, JSON Lines, gzip JSON Lines), with unique tables."""
    folder = tmp_path / "dumps"
    folder.mkdir()
    n = next(_folders)
    files = [
        make_dump.write(folder / f"f{n}-users-dump.json", items, "array", seed=1),
        make_dump.write(folder / f"f{n}-orders.jsonl", items, "jsonl", seed=2),
        make_dump.write(folder / f"f{n}-visits.jsonl", items, "jsonl", seed=3),
    ]
    packed = files[2].with_name(files[2].name + ".gz")
    packed.write_bytes(gzip.compress(files[2].read_bytes(), compresslevel=1))
    files[2].rename(tmp_path / files[2].name)  # the plain copy, outside: to compare with
    files[2] = tmp_path / files[2].name
    tables = [f"f{n}-users", f"f{n}-orders", f"f{n}-visits"]
    return folder, list(zip(files, tables, strict=True))


def test_a_folder_with_a_corrupt_file_imports_the_others(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    folder, files = dump_folder(tmp_path, 1_000)
    corrupt = folder / "zzz-broken.json.gz"
    corrupt.write_bytes(gzip.compress(b'[{"pk": "a"}, {"pk": "b"}]')[:-12])
    common = ("--endpoint", endpoint, "--ledger", ledger, "--create-table", "--key", "pk:S")
    out = rimport("start", folder, *common)
    assert out.returncode == 2, out.stderr
    for path, table in files:
        assert_table_equals(ddb, table, dump_items(path))
    assert re.search(
        r"^zzz-broken.json.gz -> zzz-broken: failed: .*zzz-broken.json.gz", out.stderr, re.M
    )
    assert f"{folder}: 3 of 4 files done, 3,000 items read" in out.stderr
    status = rimport("status", "--ledger", ledger).stdout
    # the corrupt file failed before its run began: reported above, no run in the ledger
    assert f"folder {folder.resolve()}: 3 runs (3 completed)" in status

    again = rimport("start", folder, *common)
    assert again.returncode == 2
    assert again.stderr.count("skipped: imported by run") == 3


def test_a_killed_folder_import_continues_where_it_stopped(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    folder, files = dump_folder(tmp_path, 12_000)
    common = ("--endpoint", endpoint, "--ledger", ledger, "--create-table", "--key", "pk:S")
    proc = spawn("start", folder, *common)
    # files are taken in name order: orders, users, visits; kill it inside the second one
    order = sorted(files, key=lambda f: f[0].name)
    second = str((folder / order[1][0].name).resolve())
    with Ledger(ledger) as book:
        deadline = time.monotonic() + 120
        while (run := book.latest_run(second, order[1][1])) is None or run.items_committed < 3_000:
            assert proc.poll() is None, f"rimport ended early: {proc.communicate()[1]}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert book.latest_run(second, order[1][1]).state == "interrupted"

    out = rimport("start", folder, *common)
    assert out.returncode == 0, out.stderr
    actions = re.findall(r"^\S+ -> \S+: (\w+):", out.stderr, re.M)
    assert actions == ["skipped", "resumed", "imported"]
    for path, table in files:
        assert_table_equals(ddb, table, dump_items(path))


def test_start_on_a_file_with_an_unfinished_run_points_to_resume(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = make_dump.write(tmp_path / "d.json", 20_000)
    proc = spawn("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    with Ledger(ledger) as book:
        kill_when(proc, book, run_id, 500)
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == (
        f"hint: continue it with `rimport resume {run_id} --ledger {ledger}`, or pass --new to "
        "start over"
    )
    fresh = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger,
                    "--new")  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() != run_id
