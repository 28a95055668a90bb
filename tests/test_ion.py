"""DynamoDB exports in Ion format: the same items as an Ion export and as a DynamoDB JSON
export read alike, to the last digit and byte; what Ion has and DynamoDB has not is an
item error; a broken line stops reading with its byte offset; an Ion export folder
imports with its manifests' checks."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import kill_when, rimport
from test_crash import spawn
from test_folder import typed_scan

from resumable_import import ion
from resumable_import.checks import Prepare
from resumable_import.cli.hints import spelled
from resumable_import.errors import InputError, UsageError
from resumable_import.folder import plan
from resumable_import.items import ItemError
from resumable_import.keys import KeySpec
from resumable_import.ledger import Ledger
from resumable_import.reader import Dump, Position

KEYS = (KeySpec("pk", "S"),)

# One fixture pair, written by hand: the same items as DynamoDB writes them in an Ion
# export and in a DynamoDB JSON export (the AWS documentation's example item first).
ION_LINES = [
    '$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",'
    'ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,'
    'ProductCategory:"Book",Title:"Book 103 Title",pk:"book-103"}}',
    '$ion_1_0 {Item:{pk:"numbers",big:12345678901234567890.123456789,'
    "digits38:0.12345678901234567890123456789012345678,int:42,neg:-17.250,tiny:1d-130,"
    "huge:9.99d125,zero:0.,ns:$dynamodb_NS::[1.,2.5,-3d-2,12345678901234567890.123456789]}}",
    '$ion_1_0 {Item:{pk:"binary",b:{{AAEC/f7/}},empty:{{}},bs:$dynamodb_BS::[{{aGk=}},{{AA==}}]}}',
    '$ion_1_0 {Item:{pk:"nested",m:{a:{b:{c:[1.,"x",null,true,{d:$dynamodb_SS::["y"]}]}}},'
    'l:[[],{},[[""]]],"quoted name":"v",\'symbol name\':"w"}}',
    '$ion_1_0 {Item:{pk:"strings",e:"",u:"\\u00e9\\U0001F600 caf\\xe9",nl:"a\\nb",'
    'ss:$dynamodb_SS::["","x"],n:null,b:true}}',
]
JSON_LINES = [
    {"Authors": {"SS": ["Author1", "Author2"]}, "Dimensions": {"S": "8.5 x 11.0 x 1.5"},
     "ISBN": {"S": "333-3333333333"}, "Id": {"N": "103"}, "InPublication": {"BOOL": False},
     "PageCount": {"N": "6E+2"}, "Price": {"N": "2E+3"}, "ProductCategory": {"S": "Book"},
     "Title": {"S": "Book 103 Title"}, "pk": {"S": "book-103"}},
    {"pk": {"S": "numbers"}, "big": {"N": "12345678901234567890.123456789"},
     "digits38": {"N": "0.12345678901234567890123456789012345678"}, "int": {"N": "42"},
     "neg": {"N": "-17.250"}, "tiny": {"N": "1E-130"}, "huge": {"N": "9.99E+125"},
     "zero": {"N": "0"}, "ns": {"NS": ["1", "2.5", "-0.03", "12345678901234567890.123456789"]}},
    {"pk": {"S": "binary"}, "b": {"B": "AAEC/f7/"}, "empty": {"B": ""},
     "bs": {"BS": ["aGk=", "AA=="]}},
    {"pk": {"S": "nested"}, "m": {"M": {"a": {"M": {"b": {"M": {"c": {"L": [
        {"N": "1"}, {"S": "x"}, {"NULL": True}, {"BOOL": True},
        {"M": {"d": {"SS": ["y"]}}}]}}}}}}},
     "l": {"L": [{"L": []}, {"M": {}}, {"L": [{"L": [{"S": ""}]}]}]},
     "quoted name": {"S": "v"}, "symbol name": {"S": "w"}},
    {"pk": {"S": "strings"}, "e": {"S": ""}, "u": {"S": "\u00e9\U0001f600 caf\xe9"},
     "nl": {"S": "a\nb"}, "ss": {"SS": ["", "x"]}, "n": {"NULL": True}, "b": {"BOOL": True}},
]  # fmt: skip


def write_pair(folder: Path) -> tuple[Path, Path]:
    """The fixture pair as export data files: gzip, as an export writes them."""
    ion_file, json_file = folder / "pair.ion.gz", folder / "pair.json.gz"
    ion_file.write_bytes(gzip.compress("".join(x + "\n" for x in ION_LINES).encode()))
    json_file.write_bytes(
        gzip.compress("".join(json.dumps({"Item": i}) + "\n" for i in JSON_LINES).encode())
    )
    return ion_file, json_file


def items_of(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Each item as the request that writes it carries it."""
    dump = Dump.open(path, fmt)
    prepare = Prepare(KEYS, dump.items_as)
    return [orjson.loads(prepare(raw.value, 0)[0]) for raw in dump.items()]


def test_an_ion_export_and_a_json_export_of_the_same_items_read_alike(tmp_path: Path) -> None:
    ion_file, json_file = write_pair(tmp_path)
    from_json = items_of(json_file, "ddb-export")
    assert from_json == JSON_LINES  # the JSON side is sent exactly as written
    from_ion = items_of(ion_file, "ion")
    assert len(from_ion) == len(from_json)
    for got, want in zip(from_ion, from_json, strict=True):
        assert got == want, f"item {want['pk']} differs"
    assert items_of(ion_file, "auto") == from_json  # found by its $ion_1_0
    assert Dump.open(ion_file).describe() == "ion+gzip"


def test_validate_reads_an_ion_export_and_finds_nothing_to_refuse(tmp_path: Path) -> None:
    ion_file, _ = write_pair(tmp_path)
    out = rimport("validate", ion_file, "--format", "ion", "--key", "pk:S")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{ion_file}: ion+gzip, 5 items")


REFUSED = {
    '{Item:{pk:"t",at:2024-06-01T12:00:00Z}}': (
        "IonType", "an Ion timestamp, which DynamoDB has no type for"),
    '{Item:{pk:"s",v:red}}': (
        "IonType", "an Ion symbol (red; strings are in double quotes), which DynamoDB has no "
        "type for"),
    '{Item:{pk:"f",v:1.5e0}}': (
        "IonType", "an Ion float (1.5), which is binary and inexact; DynamoDB numbers are "
        "decimals, as an export writes them (1.5, 6d2)"),
    '{Item:{pk:"c",v:{{"text"}}}}': ("IonType", "an Ion clob, which DynamoDB has no type for"),
    '{Item:{pk:"x",v:(a b)}}': ("IonType", "an Ion sexp, which DynamoDB has no type for"),
    '{Item:{pk:"a",v:money::12.}}': (
        "IonType", "a value annotated money:: (DynamoDB exports annotate only sets, as "
        "$dynamodb_SS::[...])"),
    '{Item:{pk:"m",v:$dynamodb_NS::["1"]}}': (
        "IonType", "a $dynamodb_NS set holds an Ion string; it holds only decimals"),
    '{Item:{pk:"d",v:1.,v:2.}}': ("DuplicateName", "the name 'v' appears twice in one struct"),
    '{Item:{pk:"e",v:$dynamodb_SS::[]}}': (
        "EmptySet", "an empty SS set: DynamoDB stores no empty sets"),
    '{Item:{pk:"r",v:$dynamodb_BS::[{{AA==}},{{AA==}}]}}': (
        "SetDuplicates", "a BS set holds the same member twice"),
    '{Item:{pk:"b",v:123456789012345678901234567890123456789.}}': (
        "BadNumber", "12345678901234567890…(39 chars) has 39 significant digits; DynamoDB keeps "
        "38"),
    '{Item:{pk:"k"}, Other:1}': (
        "NotAnExportLine", "the line is not $ion_1_0 {Item:{...}} as DynamoDB exports write it"),
    '{Item:[1]}': ("NotAnExportLine", "the line's Item is not a struct of attributes"),
    '{Item:{pk:"i"},Item:{pk:"j"}}': (
        "NotAnExportLine", "the line is not $ion_1_0 {Item:{...}} as DynamoDB exports write it"),
    '{Item:{pk:1.}}': ("KeyType", "key attribute 'pk' is N; the table's key is of type S"),
}  # fmt: skip


def test_what_dynamodb_cannot_store_is_an_item_error(tmp_path: Path) -> None:
    dump = tmp_path / "odd.ion"
    dump.write_text("".join(f"$ion_1_0 {line}\n" for line in REFUSED), encoding="utf-8")
    out = rimport("validate", dump, "--key", "pk:S")
    assert out.returncode == 3, out.stderr
    problems = [line.split(": ", 2)[1:] for line in out.stdout.splitlines()
                if line.startswith("  item ")]  # fmt: skip
    assert problems == [list(v) for v in REFUSED.values()]


def test_a_line_nested_too_deep_is_an_item_error_at_any_depth(tmp_path: Path) -> None:
    prepare = Prepare(KEYS, "ion")
    dump = tmp_path / "deep.ion"
    lines = [f'{{Item:{{pk:"d{n}",v:{"[" * n}{"]" * n}}}}}' for n in (31, 32, 5_000)]
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = []
    for raw in Dump.open(dump, "ion").items():
        try:
            prepare(raw.value, 0)
            results.append("ok")
        except ItemError as e:
            results.append(e.code)
    assert results == ["ok", "TooDeep", "TooDeep"]  # 5,000: deeper than amazon-ion decodes


def test_a_malformed_line_stops_reading_with_its_file_offset_and_index(tmp_path: Path) -> None:
    good = '$ion_1_0 {Item:{pk:"a"}}\n'
    cases = {
        "syntax.ion": (good * 3 + '$ion_1_0 {Item:{pk:"b",x:[1,2}}\n' + good, 3 * len(good), 3),
        "two.ion": (good + "\n" + '{Item:{pk:"b"}} {Item:{pk:"c"}}\n', len(good) + 1, 1),
        "cut.ion": (good * 2 + '$ion_1_0 {Item:{pk:"b",x:"abc', 2 * len(good), 2),
        "latin1.ion": (good, len(good), 1),
    }
    problems = {
        "syntax.ion": "invalid Ion (IERR_INVALID_SYNTAX)",
        "two.ion": "2 values on one line, where an export has one",
        "cut.ion": "the last line is cut short (truncated?)",
        "latin1.ion": "not UTF-8 text",
    }
    for name, (text, offset, index) in cases.items():
        dump = tmp_path / name
        data = text.encode() + (b'{Item:{pk:"caf\xe9"}}\n' if name == "latin1.ion" else b"")
        dump.write_bytes(data)
        with pytest.raises(InputError) as caught:
            list(Dump.open(dump, "ion").items())
        assert caught.value.message == (
            f"{dump}: {problems[name]} in the line at byte {offset} (item {index})"
        )
        assert (caught.value.offset, caught.value.index) == (offset, index)
    out = rimport("validate", tmp_path / "syntax.ion", "--key", "pk:S")
    assert out.returncode == 2
    assert out.stdout.startswith(f"{tmp_path / 'syntax.ion'}: ion, 3 items")
    assert (
        f"error: {tmp_path / 'syntax.ion'}: invalid Ion (IERR_INVALID_SYNTAX) in the line at "
        "byte 75 (item 3)\n" in out.stdout
    )


def test_reading_resumes_at_a_line_offset(tmp_path: Path) -> None:
    ion_file, _ = write_pair(tmp_path)
    dump = Dump.open(ion_file, "ion")
    every = list(dump.items())
    assert [r.index for r in every] == [0, 1, 2, 3, 4]
    rest = list(dump.items(Position(2, every[1].end)))
    assert [(r.index, r.end, r.value.line) for r in rest] == [
        (r.index, r.end, r.value.line) for r in every[2:]
    ]


def test_json_and_ion_named_as_each_other_are_refused(tmp_path: Path) -> None:
    ion_file, json_file = write_pair(tmp_path)
    with pytest.raises(InputError, match="its first line is JSON, not a line of DynamoDB's Ion"):
        Dump.open(json_file, "ion")
    for fmt in ("json", "jsonl", "ddb-json", "ddb-export"):
        with pytest.raises(InputError, match=r"begins with \$ion_1_0") as e:
            Dump.open(ion_file, fmt)
        assert spelled(e.value.message).endswith(f"not the JSON --format {fmt} reads")
        assert e.value.message.endswith(f"not the JSON format={fmt!r} reads")  # Python's
    bare = tmp_path / "bare.ion"
    bare.write_text('{Item:{pk:"a"}}\n', encoding="utf-8")
    out = rimport("validate", bare, "--key", "pk:S")
    assert out.returncode == 2
    assert "hint: for a DynamoDB export in Ion format, use --format ion" in out.stderr
    assert rimport("validate", bare, "--key", "pk:S", "--format", "ion").returncode == 0


def test_without_the_c_extension_items_read_alike_only_slower(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ion_file, _ = write_pair(tmp_path)
    monkeypatch.setattr(ion.simpleion, "c_ext", False)  # every value comes back wrapped
    monkeypatch.setattr(ion, "_STORE", "_gone")  # and structs are read through items()
    assert items_of(ion_file, "ion") == JSON_LINES
    dump = tmp_path / "odd.ion"
    dump.write_text("".join(f"$ion_1_0 {line}\n" for line in REFUSED), encoding="utf-8")
    prepare = Prepare(KEYS, "ion")
    problems = []
    for raw in Dump.open(dump, "ion").items():
        with pytest.raises(ItemError) as caught:
            prepare(raw.value, 0)
        problems.append([caught.value.code, caught.value.message])
    assert problems == [list(v) for v in REFUSED.values()]


def test_without_amazon_ion_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ion_file, _ = write_pair(tmp_path)
    monkeypatch.setattr(ion, "simpleion", None)
    with pytest.raises(UsageError, match="needs the `amazon-ion` package") as caught:
        Dump.open(ion_file, "ion")
    assert caught.value.hint and "pip install 'rimport[ion]'" in caught.value.hint


# -- Ion export folders --------------------------------------------------------------------


def write_ion_export(folder: Path, table: str, lines: list[str], parts: int = 2) -> int:
    """An export to S3 in ION format as it is laid out: both manifests, and gzip data files
    of Ion lines under data/. Returns the number of items."""
    export_id = "01700000000000-ion12345"
    (folder / "data").mkdir(parents=True)
    files = []
    for n in range(parts):
        mine = lines[n::parts]
        data = gzip.compress("".join(x + "\n" for x in mine).encode())
        name = f"{hashlib.sha1(str(n).encode()).hexdigest()[:26]}.ion.gz"
        (folder / "data" / name).write_bytes(data)
        files.append({
            "itemCount": len(mine),
            "md5Checksum": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "etag": hashlib.md5(data).hexdigest(),
            "dataFileS3Key": f"AWSDynamoDB/{export_id}/data/{name}",
        })  # fmt: skip
    (folder / "manifest-files.json").write_text("".join(json.dumps(f) + "\n" for f in files))
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}"
    (folder / "manifest-summary.json").write_text(json.dumps({
        "version": "2020-06-30", "exportArn": f"{arn}/export/{export_id}", "tableArn": arn,
        "itemCount": len(lines), "outputFormat": "ION",
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
    }))  # fmt: skip
    return len(lines)


def test_an_ion_export_folder_is_planned_from_its_manifests(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_ion_export(export, "Books", ION_LINES)
    todo = plan(export, None, None)
    assert (todo.fmt, todo.expected_items) == ("ion", 5)
    assert [(e.table, e.expected_items, e.problem) for e in todo.entries] == [
        ("Books", 2, None), ("Books", 3, None),
    ]  # fmt: skip
    assert all(e.path.name.endswith(".ion.gz") for e in todo.entries)
    assert plan(export, None, None, "ion").fmt == "ion"
    with pytest.raises(UsageError, match="export in ION format, read as ion, not as ddb-export"):
        plan(export, None, None, "ddb-export")
    damaged = sorted((export / "data").iterdir())[0]
    damaged.write_bytes(damaged.read_bytes()[:-4])
    problems = [e.problem for e in plan(export, None, None).entries if e.problem]
    assert len(problems) == 1 and "its MD5 does not match manifest-files.json" in str(problems[0])


def test_an_ion_export_folder_imports_as_its_json_twin_does(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    _, json_file = write_pair(tmp_path)
    common = ("--endpoint", endpoint, "--ledger", ledger)
    out = rimport("start", json_file, "--table", table, "--format", "ddb-export", *common)
    assert out.returncode == 0, out.stderr

    refused = '$ion_1_0 {Item:{pk:"when",at:2024-06-01T}}'
    export = tmp_path / "export"
    total = write_ion_export(export, f"{table}-ion", [*ION_LINES, refused])
    out = rimport("start", export, "--create-table", "--key", "pk:S", *common)
    assert out.returncode == 3, out.stderr  # the timestamp is dead-lettered
    assert f"export: 2 of 2 files done, {total:,} items read" in out.stderr
    assert typed_scan(ddb, f"{table}-ion") == typed_scan(ddb, table)
    with Ledger(ledger) as book:
        letters = [d for run in book.runs() for d in book.dead_letters(run.id)]
    assert [(d.code, d.item) for d in letters] == [("IonType", {"$ion": refused})]


def test_a_killed_ion_import_resumes_from_its_checkpoint(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    count = 2_000
    dump = tmp_path / "items.ion.gz"  # --format auto: found by its $ion_1_0
    dump.write_bytes(gzip.compress("".join(
        f'$ion_1_0 {{Item:{{pk:"k{i}",n:{i}.,b:{{{{{base64.b64encode(b"%d" % i).decode()}}}}},'
        f'ss:$dynamodb_SS::["x","y{i}"],pad:"{"p" * 200}"}}}}\n'
        for i in range(count)
    ).encode()))  # fmt: skip
    proc = spawn("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    with Ledger(ledger) as book:
        assert kill_when(proc, book, run_id, 300) < count
        assert book.run(run_id).shape == "ion+gzip"
    monkeypatch.setenv("RIMPORT_READER_PROCESS", "1")  # the resumed run reads in a child
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    with Ledger(ledger) as book:
        assert book.run(run_id).items_committed == count
    assert typed_scan(ddb, table) == {
        f"k{i}": {"pk": {"S": f"k{i}"}, "n": {"N": str(i)}, "b": {"B": b"%d" % i},
                  "ss": {"SS": ["x", f"y{i}"]}, "pad": {"S": "p" * 200}}
        for i in range(count)
    }  # fmt: skip
