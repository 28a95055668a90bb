"""`start --via s3://...`: the dump staged to moto's S3 (in server mode) as gzip DynamoDB
JSON lines, each key in one object with its last value, then ImportTable on the same moto
server creating the table; the table compared with the dump item by item, after a clean
run and after a SIGKILL during staging and `resume`."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import RIMPORT, assert_table_equals, dump_items, rimport

from resumable_import.keys import canonical
from resumable_import.ledger import Ledger
from resumable_import.staging import object_of

_names = iter(range(10**6))


@pytest.fixture
def names() -> tuple[str, str]:
    """A new table name and a new prefix of the staging bucket."""
    n = next(_names)
    return f"via-{n}", f"s3://stage/run{n}/"


def repeating_dump(path: Path, count: int, keys: int, seed: int = 7) -> Path:
    """JSON Lines whose keys repeat, so that which value is last matters."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            item = {"pk": f"k{rng.randrange(keys):05d}", "n": i, "tags": ["a", "b"][: i % 3],
                    "price": f"{i}.5", "nested": {"x": i % 7}}  # fmt: skip
            f.write(json.dumps(item) + "\n")
    return path


def staged_lines(s3: Any, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every staged object under the prefix: its lines, parsed."""
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key_prefix)
    out = {}
    for o in listed.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        out[o["Key"]] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def test_staged_objects_hold_each_key_once_with_its_last_value_and_import_matches_the_dump(
    tmp_path: Path, stage_s3: Any, mddb: Any, names: tuple[str, str], ledger: Path
) -> None:
    table, via = names
    dump = repeating_dump(tmp_path / "dump.jsonl", 1_000, 400)
    out = rimport("start", dump, "--table", table, "--via", via, "--via-objects", "4",
                  "--create-table", "--key", "pk:S", "--ledger", ledger,
                  "--progress", "none")  # fmt: skip
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split()[0]

    objects = staged_lines(stage_s3, via)
    assert len(objects) == 4 and all(k.endswith(".json.gz") for k in objects)
    last = {}
    for item in dump_items(dump):
        last[item["pk"]] = item
    seen: dict[str, str] = {}
    for key, lines in objects.items():
        number = int(key.rsplit("part-", 1)[1][:5])
        for line in lines:
            assert set(line) == {"Item"}
            pk = line["Item"]["pk"]["S"]
            assert pk not in seen, f"{pk} in {seen[pk]} and {key}"
            seen[pk] = key
            assert int(line["Item"]["n"]["N"]) == last[pk]["n"]  # the later element won
            assert object_of(canonical((pk,)), 4) == number  # by hash, so a resume agrees
    assert sorted(seen) == sorted(last)
    pks = [line["Item"]["pk"]["S"] for lines in objects.values() for line in lines]
    assert pks != sorted(pks)  # spread, not in key order

    assert_table_equals(mddb, table, dump_items(dump))
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert (st["state"], st["items_committed"], st["items_written"]) == (
        "completed", 1_000, len(last))  # fmt: skip
    assert st["via"]["status"] == "COMPLETED" and st["via"]["arn"].startswith("arn:aws:dynamodb")
    assert st["via"]["imported_items"] == len(last) and len(st["via"]["staged"]) == 4
    text = rimport("status", run_id, "--ledger", ledger).stdout
    assert "operation state: COMPLETED" in text and st["via"]["arn"] in text

    gone = rimport("forget", run_id, "--ledger", ledger)  # and its staging goes with it
    assert gone.returncode == 0, gone.stderr
    with sqlite3.connect(ledger) as db:
        for name in ("staging", "staged_objects"):
            assert db.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,), name


def test_killed_while_staging_resumes_at_the_first_object_not_uploaded(
    tmp_path: Path, stage_s3: Any, mddb: Any, names: tuple[str, str], ledger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the scratch the kill leaves is the test's
    table, via = names
    dump = repeating_dump(tmp_path / "dump.jsonl", 6_000, 4_000, seed=11)
    objects = 40
    proc = subprocess.Popen(
        [RIMPORT, "start", str(dump), "--table", table, "--via", via, "--via-objects",
         str(objects), "--create-table", "--key", "pk:S", "--ledger", str(ledger),
         "--progress", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 60
    with Ledger(ledger) as book:
        while not book.staging.objects(run_id):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        before = book.staging.objects(run_id)
        assert 0 < len(before) < objects, "the kill came after staging: nothing proved"
        assert book.staging.of(run_id).arn is None  # type: ignore[union-attr]
        assert book.run(run_id).state == "interrupted"

    left = list(Path(os.environ["TMPDIR"]).glob(f"rimport-stage-{run_id}-*"))
    assert left, "the killed process left its scratch folder"
    assert {oct(p.stat().st_mode & 0o777) for p in left[0].iterdir()} <= {"0o600"}
    out = rimport("resume", run_id, "--ledger", ledger, "--progress", "none")
    assert out.returncode == 0, out.stderr
    assert not list(Path(os.environ["TMPDIR"]).glob(f"rimport-stage-{run_id}-*"))
    with Ledger(ledger) as book:
        after = book.staging.objects(run_id)
        assert len(after) == objects
        assert after[: len(before)] == before  # the same objects, not uploaded again
        assert book.run(run_id).state == "completed"
    assert len(staged_lines(stage_s3, via)) == objects
    assert_table_equals(mddb, table, dump_items(dump))


def test_a_prefix_holding_other_objects_is_refused(
    tmp_path: Path, stage_s3: Any, names: tuple[str, str], ledger: Path
) -> None:
    table, via = names
    stage_s3.put_object(
        Bucket="stage", Key=via.removeprefix("s3://stage/") + "old.json", Body=b"{}"
    )
    dump = repeating_dump(tmp_path / "dump.jsonl", 10, 10)
    out = rimport("start", dump, "--table", table, "--via", via, "--create-table", "--key",
                  "pk:S", "--ledger", ledger)  # fmt: skip
    assert out.returncode != 0
    assert "already holds objects" in out.stderr
    assert f"hint: stage to an empty prefix: --via {via}NEW/" in out.stderr
    assert rimport("status", "--ledger", ledger, "--json").stdout.strip() in ("[]", "")


def test_dry_run_says_what_would_be_staged_and_stages_nothing(
    tmp_path: Path, stage_s3: Any, names: tuple[str, str], ledger: Path
) -> None:
    table, via = names
    dump = repeating_dump(tmp_path / "dump.jsonl", 300, 100)
    distinct = len({i["pk"] for i in dump_items(dump)})
    out = rimport("start", dump, "--table", table, "--via", via, "--via-objects", "3",
                  "--create-table", "--key", "pk:S", "--dry-run", "--ledger", ledger)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"would stage {distinct:,} items (" in out.stdout
    assert f"in 3 objects under {via}" in out.stdout
    assert f"ImportTable (a new table, on-demand) into table {table}" in out.stdout
    assert staged_lines(stage_s3, via) == {}


def test_refused_elements_become_the_runs_dead_letters(
    tmp_path: Path, stage_s3: Any, mddb: Any, names: tuple[str, str], ledger: Path
) -> None:
    table, via = names
    dump = repeating_dump(tmp_path / "dump.jsonl", 200, 200)
    lines = dump.read_text().splitlines()
    lines.insert(150, json.dumps({"id": "no pk here"}))
    dump.write_text("\n".join(lines) + "\n")
    out = rimport("start", dump, "--table", table, "--via", via, "--create-table", "--key",
                  "pk:S", "--ledger", ledger, "--progress", "none")  # fmt: skip
    assert out.returncode != 0
    run_id = out.stdout.split()[0]
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert (st["state"], st["dead_letters"]) == ("completed_with_failures", 1)
    assert st["dead_letter_details"]["first"][0]["index"] == 150
    assert_table_equals(mddb, table, [i for i in dump_items(dump) if "pk" in i])


def test_via_with_create_table_needs_a_new_table_and_its_key(
    tmp_path: Path, stage_s3: Any, mddb: Any, names: tuple[str, str], ledger: Path
) -> None:
    table, via = names
    dump = repeating_dump(tmp_path / "dump.jsonl", 10, 10)
    out = rimport("start", dump, "--table", table, "--via", via, "--ledger", ledger)
    assert out.returncode == 2
    assert f"no table '{table}': StartBulkPutItems puts into an existing table" in out.stderr
    assert "hint: let ImportTable create it: add --create-table --key NAME:S|N|B" in out.stderr
    out = rimport("start", dump, "--table", table, "--via", via, "--create-table",
                  "--ledger", ledger)  # fmt: skip
    assert out.returncode == 2
    assert "hint: add --key NAME:S|N|B" in out.stderr
    mddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    out = rimport("start", dump, "--table", table, "--via", via, "--create-table", "--key",
                  "pk:S", "--ledger", ledger)  # fmt: skip
    assert out.returncode == 2
    assert f"table {table!r} exists: ImportTable creates a new table" in out.stderr
    assert staged_lines(stage_s3, via) == {}


def test_a_request_file_that_deletes_is_refused_and_one_that_only_puts_is_staged(
    tmp_path: Path, stage_s3: Any, mddb: Any, names: tuple[str, str], ledger: Path
) -> None:
    table, via = names
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"p{i}"}, "v": {"N": str(i)}}}} for i in range(5)]
    path = tmp_path / "requests.json"
    path.write_text(json.dumps({table: puts}))
    out = rimport("start", path, "--table", table, "--via", via, "--create-table", "--key",
                  "pk:S", "--ledger", ledger, "--progress", "none")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert_table_equals(mddb, table, [{"pk": f"p{i}", "v": i} for i in range(5)])

    other, other_via = f"{table}-del", f"{via}del/"
    deletes = [*puts, {"DeleteRequest": {"Key": {"pk": {"S": "p1"}}}}]
    path.write_text(json.dumps({other: deletes}))
    out = rimport("start", path, "--table", other, "--via", other_via, "--create-table",
                  "--key", "pk:S", "--ledger", ledger, "--progress", "none")  # fmt: skip
    assert out.returncode == 2
    assert "staged items can only be put" in out.stderr
    assert "hint: leave out --via to import it with BatchWriteItem" in out.stderr
    assert staged_lines(stage_s3, other_via) == {}


def test_a_resume_after_the_hand_off_re_attaches_to_the_same_import(
    tmp_path: Path, stage_s3: Any, mddb: Any, names: tuple[str, str], ledger: Path
) -> None:
    """As when rimport was stopped while it followed the import: the ARN is in the ledger,
    so `resume` only describes it again. A second ImportTable would fail here: its table
    exists."""
    table, via = names
    dump = repeating_dump(tmp_path / "dump.jsonl", 300, 120)
    out = rimport("start", dump, "--table", table, "--via", via, "--create-table", "--key",
                  "pk:S", "--ledger", ledger, "--progress", "none")  # fmt: skip
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split()[0]
    with Ledger(ledger) as book:
        arn, written = book.staging.of(run_id).arn, book.run(run_id).items_written  # type: ignore[union-attr]
        book.set_state(run_id, "interrupted", error="stopped by signal 15 by the user")
    out = rimport("resume", run_id, "--ledger", ledger, "--progress", "none")
    assert out.returncode == 0, out.stderr
    with Ledger(ledger) as book:
        assert book.staging.of(run_id).arn == arn  # type: ignore[union-attr]
        run = book.run(run_id)
        assert (run.state, run.items_written) == ("completed", written)
    assert_table_equals(mddb, table, dump_items(dump))
