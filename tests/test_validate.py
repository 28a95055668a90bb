"""`rimport validate` and `start --dry-run`: every problem at its index, nothing written;
and `start` dead-letters exactly what validate reported."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import make_dump
from conftest import assert_table_equals, rimport, scan

# index -> (what is wrong with the item there, the kind validate names)
SEEDED: dict[int, tuple[dict[str, Any] | str, str]] = {
    3: ({"v": 1}, "MissingKey"),
    10: ({"pk": ""}, "EmptyKey"),
    25: ({"pk": 7}, "KeyType"),
    31: ({"pk": "big", "blob": "x" * 410_000}, "ItemTooLarge"),
    44: ('{"pk": "num", "n": 1E+200}', "BadNumber"),
    52: ('{"pk": "digits", "n": 1234567890123456789012345678901234567890.5}', "BadNumber"),
    60: ({"pk": "deep", "v": json.loads("[" * 33 + "]" * 33)}, "TooDeep"),
    71: ("[1, 2]", "NotAnObject"),
}


def seeded_dump(path: Path, count: int = 100) -> tuple[Path, list[dict[str, Any]]]:
    """A JSON array with one item of each kind of problem; also the items that are fine."""
    texts, good = [], []
    for i in range(count):
        if i in SEEDED:
            bad = SEEDED[i][0]
            texts.append(bad if isinstance(bad, str) else json.dumps(bad))
        else:
            item = {"pk": f"k{i % 90}", "i": i}  # items 90..99 repeat the keys of 0..9
            texts.append(json.dumps(item))
            good.append(item)
    path.write_text("[\n" + ",\n".join(texts) + "\n]\n")
    return path, good


def reported(stdout: str) -> list[tuple[int, str]]:
    found = re.findall(r"^  item (\d+) \(bytes [\d,]+\.\.[\d,]+\): (\w+):", stdout, re.M)
    return [(int(i), code) for i, code in found]


def test_validate_reports_each_problem_at_its_index_and_writes_nothing(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump, _ = seeded_dump(tmp_path / "seeded.json")
    out = rimport("validate", dump, "--table", table, "--endpoint", endpoint)
    assert out.returncode == 3, out.stderr
    assert reported(out.stdout) == [(i, code) for i, (_, code) in sorted(SEEDED.items())]
    assert f"{dump}: array, 100 items" in out.stdout
    assert "duplicate keys: 9 " in out.stdout  # k3 was missing its key the first time
    assert re.search(r"^  BadNumber\s+2$", out.stdout, re.M)
    assert "8 items DynamoDB would refuse:" in out.stdout
    dry = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger,
                  "--dry-run")  # fmt: skip
    assert dry.returncode == 3
    assert dry.stdout == out.stdout.replace(_speed(out.stdout), _speed(dry.stdout))
    assert scan(ddb, table) == {}
    assert json.loads(rimport("status", "--json", "--ledger", ledger).stdout) == []


def _speed(stdout: str) -> str:
    return stdout.splitlines()[0].split(" read")[1]


def test_start_writes_every_valid_item_and_dead_letters_exactly_the_bad_ones(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump, good = seeded_dump(tmp_path / "seeded.json")
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 3, out.stderr
    run_id = out.stdout.splitlines()[0]
    assert_table_equals(ddb, table, good)
    detail = rimport("status", run_id, "--ledger", ledger).stdout
    letters = re.findall(r"^\s+(\d+)  (\w+): .* \[not retryable\]$", detail, re.M)
    assert [(int(i), code) for i, code in letters] == [
        (i, code) for i, (_, code) in sorted(SEEDED.items())
    ]


def test_a_clean_dump_and_its_gzip_validate_clean_without_any_table(tmp_path: Path) -> None:
    dump = make_dump.write(tmp_path / "clean.jsonl", 2_000, "jsonl")
    packed = tmp_path / "clean.jsonl.gz"
    packed.write_bytes(gzip.compress(dump.read_bytes()))
    for path, shape in ((dump, "jsonl"), (packed, "jsonl+gzip")):
        out = rimport("validate", path, "--key", "pk:S", "--sort-key", "n:N")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith(f"{path}: {shape}, 2,000 items")
        assert out.stdout.endswith("no problems: every item can be written\n")


def test_a_broken_file_reports_what_came_before_and_where_it_broke(tmp_path: Path) -> None:
    dump, _ = seeded_dump(tmp_path / "seeded.json")
    cut = tmp_path / "cut.json"
    text = dump.read_text()
    cut.write_text(text[: text.index('"i": 20}') + 4])
    out = rimport("validate", cut, "--key", "pk:S")
    assert out.returncode == 2
    assert reported(out.stdout) == [(3, "MissingKey"), (10, "EmptyKey")]
    assert ", 20 items" in out.stdout
    assert re.search(r"^error: .*cut\.json: the file ends .* in item 20$", out.stdout, re.M)


def test_dynamodb_json_problems_and_the_first_twenty(tmp_path: Path) -> None:
    lines = [{"pk": {"S": f"k{i}"}, "s": {"SS": []}} for i in range(25)]
    lines[5] = {"pk": {"S": "x"}, "n": {"NS": ["1", "1.00"]}}
    lines[6] = {"pk": {"S": "fine"}}
    dump = tmp_path / "typed.jsonl"
    dump.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = rimport("validate", dump, "--key", "pk:S", "--format", "ddb-json")
    assert out.returncode == 3
    problems = reported(out.stdout)
    assert len(problems) == 20 and problems[5] == (5, "SetDuplicates")
    assert "  ... and 4 more" in out.stdout
    assert re.search(r"^  EmptySet\s+23$", out.stdout, re.M)
    assert re.search(r"^  SetDuplicates\s+1$", out.stdout, re.M)


def test_validate_without_a_key_needs_the_table(tmp_path: Path, endpoint: str) -> None:
    dump = make_dump.write(tmp_path / "nosuchtable-dump.json", 3)
    out = rimport("validate", dump, "--endpoint", endpoint)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"error: table 'nosuchtable' does not exist at {endpoint}",
        "hint: pass the key it will have: --key NAME:S|N|B [--sort-key NAME:S|N|B]",
    ]


def test_a_folder_is_validated_file_by_file(tmp_path: Path) -> None:
    dump, _ = seeded_dump(tmp_path / "seeded.json")
    make_dump.write(tmp_path / "clean.jsonl", 500, "jsonl")
    (tmp_path / "corrupt.json.gz").write_bytes(gzip.compress(b'[{"pk": "a"}]' * 100)[:-30])
    out = rimport("validate", tmp_path, "--key", "pk:S")
    assert out.returncode == 2
    assert "clean.jsonl: jsonl, 500 items" in out.stdout
    assert "no problems: every item can be written" in out.stdout
    assert re.search(r"^error: .*corrupt\.json\.gz: ", out.stdout, re.M)
    assert (
        f"{dump}: array, 100 items" in out.stdout and "8 items DynamoDB would refuse" in out.stdout
    )


def test_a_one_line_wrapper_is_imported_as_a_wrapper_and_says_so(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    """What `jq -c` or `aws dynamodb scan --output json | jq -c .` leaves: one line."""
    items = [{"pk": "a", "n": 1}, {"pk": "b", "n": 2}]
    dump = tmp_path / "scan.json"
    dump.write_text(json.dumps({"Items": items, "Count": 2}, separators=(",", ":")) + "\n")
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert (
        "scan.json is one JSON object on one line: reading the items under 'Items' "
        "(--format jsonl reads the line as one item instead)"
    ) in out.stderr.splitlines()
    assert_table_equals(ddb, table, items)
    (run,) = json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    assert run["shape"] == "object:Items"
    check = rimport("validate", dump, "--key", "pk:S")
    assert check.stdout.startswith(f"{dump}: object:Items, 2 items"), check.stdout
