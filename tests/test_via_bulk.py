"""`start --via` into an existing table: StartBulkPutItems, against the test double of
`bulk_standin.py` (neither moto nor DynamoDB Local implements it), which reads the staged
objects from moto's S3 and puts them into moto's DynamoDB; every other DynamoDB call it
forwards to that moto."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bulk_standin
import pytest
from conftest import RIMPORT, assert_table_equals, dump_items, rimport
from test_via import repeating_dump

from resumable_import.ledger import Ledger

_names = iter(range(10**6))


@pytest.fixture
def table(mddb: Any) -> Iterator[str]:
    name = f"bulk-{next(_names)}"
    mddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    yield name


def via_of(table: str) -> str:
    return f"s3://stage/{table}/"


def start(dump: Path, table: str, standin: Any, ledger: Path, *more: str) -> list[str]:
    return [RIMPORT, "start", str(dump), "--table", table, "--via", via_of(table),
            "--endpoint", standin.url, "--ledger", str(ledger), "--progress", "none",
            *more]  # fmt: skip


def handed_off(
    dump: Path, table: str, standin: Any, ledger: Path
) -> tuple[subprocess.Popen[str], str, str]:
    """A `start --via` in a child process, once the operation's ARN is in the ledger: the
    process, its run id and the ARN."""
    proc = subprocess.Popen(start(dump, table, standin, ledger), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ.copy())  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 60
    with Ledger(ledger) as book:
        while (op := book.staging.of(run_id)) is None or op.arn is None:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
    return proc, run_id, op.arn


def test_staged_items_are_put_into_the_existing_table_with_the_runs_token_and_settings(
    tmp_path: Path,
    stage_s3: Any,
    mddb: Any,
    moto: str,
    table: str,
    ledger: Path,
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 300, 120)
    with bulk_standin.running(moto) as standin:
        out = subprocess.run(start(dump, table, standin, ledger, "--via-objects", "3",
                                   "--max-wcu", "2048", "--performance-tier", "accelerated",
                                   "--progress", "json"), capture_output=True, text=True,
                             env={**os.environ, "RIMPORT_PROGRESS_INTERVAL": "0"})  # fmt: skip
        assert out.returncode == 0, out.stderr
        run_id = out.stdout.split()[0]
        starts = [body for op, body in standin.requests if op == "StartBulkPutItems"]
    assert len(starts) == 1 and standin.started == 1
    assert starts[0]["ClientToken"] == f"rimport-{run_id}"
    assert (
        starts[0]["MaxWriteRequestUnits"] == 2048 and starts[0]["PerformanceTier"] == "ACCELERATED"
    )
    assert starts[0]["InputS3Configuration"]["S3KeyPrefix"] == f"{table}/data/"
    report = {"S3Bucket": "stage", "S3KeyPrefix": f"{table}/report/", "OutputType": ["ERROR"]}
    assert starts[0]["OutputS3Configuration"] == report
    assert_table_equals(mddb, table, dump_items(dump))
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    distinct = len({i["pk"] for i in dump_items(dump)})
    assert (st["state"], st["items_written"]) == ("completed", distinct)
    assert st["via"]["operation"] == "bulk" and st["via"]["status"] == "COMPLETED"
    assert st["via"]["total_bytes"] == sum(o["bytes"] for o in st["via"]["staged"])
    told = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert told[0]["bytes_total"] == dump.stat().st_size  # staging: the dump read
    followed = told[-1]  # then the operation: its input bytes processed, of its total
    assert (followed["bytes_done"], followed["bytes_total"], followed["percent"]) == (
        st["via"]["total_bytes"], st["via"]["total_bytes"], 100.0)  # fmt: skip


def test_killed_while_the_operation_runs_resume_re_attaches_to_it(
    tmp_path: Path,
    stage_s3: Any,
    mddb: Any,
    moto: str,
    table: str,
    ledger: Path,
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 300, 150)
    with bulk_standin.running(moto, delay=0.01) as standin:
        proc, run_id, arn = handed_off(dump, table, standin, ledger)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert standin.operations[arn].status == "IN_PROGRESS"  # the kill came first
        out = rimport("resume", run_id, "--ledger", ledger, "--progress", "none")
        assert out.returncode == 0, out.stderr
        assert standin.started == 1  # one operation, not two
    with Ledger(ledger) as book:
        assert book.run(run_id).state == "completed"
    assert_table_equals(mddb, table, dump_items(dump))


def test_cancel_stops_the_operation_and_the_run_says_so(
    tmp_path: Path,
    stage_s3: Any,
    mddb: Any,
    moto: str,
    table: str,
    ledger: Path,
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 300, 300)
    with bulk_standin.running(moto, delay=0.05) as standin:
        proc, run_id, arn = handed_off(dump, table, standin, ledger)
        out = rimport("cancel", run_id, "--ledger", ledger)
        assert out.returncode == 0, out.stderr
        # CANCELLING, or CANCELLED when the stand-in's worker saw it first
        assert re.match(rf"{re.escape(arn)}: CANCELL(ING|ED); ", out.stdout), out.stdout
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "StartBulkPutItems CANCELLED" in err
        assert standin.operations[arn].status == "CANCELLED"
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert st["state"] == "failed" and st["via"]["status"] == "CANCELLED"
    written = mddb.scan(TableName=table, Select="COUNT")["Count"]
    assert 0 < written < 300


def test_a_failed_operation_fails_the_run_with_its_code(
    tmp_path: Path,
    stage_s3: Any,
    mddb: Any,
    moto: str,
    table: str,
    ledger: Path,
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 50, 50)
    with bulk_standin.running(moto, fail="S3AccessDenied") as standin:
        out = subprocess.run(start(dump, table, standin, ledger), capture_output=True,
                             text=True, env=os.environ.copy())  # fmt: skip
    assert out.returncode != 0
    assert "StartBulkPutItems FAILED: S3AccessDenied: the stand-in was told to fail" in out.stderr


def test_max_wcu_under_1024_is_refused_before_anything_is_staged(
    tmp_path: Path,
    stage_s3: Any,
    moto: str,
    table: str,
    ledger: Path,
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 10, 10)
    with bulk_standin.running(moto) as standin:
        out = subprocess.run(start(dump, table, standin, ledger, "--max-wcu", "500"),
                             capture_output=True, text=True, env=os.environ.copy())  # fmt: skip
        assert standin.requests == []
    assert out.returncode == 2
    assert "MaxWriteRequestUnits of at least 1,024, not 500" in out.stderr
    assert "hint: give --max-wcu 1024 or more, or leave it out" in out.stderr


def test_sigterm_while_following_leaves_the_operation_running_and_says_how_to_follow_it(
    tmp_path: Path, stage_s3: Any, mddb: Any, moto: str, table: str, ledger: Path
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 200, 200)
    with bulk_standin.running(moto, delay=0.02) as standin:
        proc, run_id, arn = handed_off(dump, table, standin, ledger)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "(its StartBulkPutItems goes on in DynamoDB)" in err
        assert f"rimport resume {run_id}" in err
        assert standin.operations[arn].status == "IN_PROGRESS"
        out = rimport("resume", run_id, "--ledger", ledger, "--progress", "none")
        assert out.returncode == 0, out.stderr
        assert standin.started == 1
    assert_table_equals(mddb, table, dump_items(dump))


def test_zstd_objects_are_staged_and_named_so_in_the_request(
    tmp_path: Path, stage_s3: Any, mddb: Any, moto: str, table: str, ledger: Path
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 200, 90)
    with bulk_standin.running(moto) as standin:
        out = subprocess.run(start(dump, table, standin, ledger, "--via-objects", "2",
                                   "--via-compression", "zstd"),
                             capture_output=True, text=True, env=os.environ.copy())  # fmt: skip
        assert out.returncode == 0, out.stderr
        (request,) = [body for op, body in standin.requests if op == "StartBulkPutItems"]
    assert request["InputS3Configuration"]["InputCompressionType"] == "ZSTD"
    listed = stage_s3.list_objects_v2(Bucket="stage", Prefix=f"{table}/data/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == [
        "part-00000-of-00002.json.zst", "part-00001-of-00002.json.zst"]  # fmt: skip
    body = stage_s3.get_object(Bucket="stage", Key=listed[0]["Key"])["Body"].read()
    assert body[:4] == b"\x28\xb5\x2f\xfd"  # zstd's magic number
    assert_table_equals(mddb, table, dump_items(dump))


def test_a_global_table_is_refused_before_anything_is_staged(
    tmp_path: Path, stage_s3: Any, moto: str, table: str, ledger: Path
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 10, 10)
    with bulk_standin.running(moto, replicas=True) as standin:
        out = subprocess.run(start(dump, table, standin, ledger), capture_output=True,
                             text=True, env=os.environ.copy())  # fmt: skip
        assert standin.requests == []
    assert out.returncode == 2
    assert "is a global table (replicated to 1 more Regions): StartBulkPutItems" in out.stderr
    assert "hint: leave out --via to write it with BatchWriteItem" in out.stderr
    assert "Contents" not in stage_s3.list_objects_v2(Bucket="stage", Prefix=f"{table}/")


def test_items_the_operation_refused_come_home_as_dead_letters_and_retry_failed_writes_them(
    tmp_path: Path,
    stage_s3: Any,
    mddb: Any,
    moto: str,
    table: str,
    ledger: Path,
) -> None:
    dump = repeating_dump(tmp_path / "dump.jsonl", 200, 80)
    items = dump_items(dump)
    last = {i["pk"]: n for n, i in enumerate(items)}
    held, absent = sorted(last)[3], sorted(last)[11]
    mddb.put_item(TableName=table, Item={"pk": {"S": held}, "n": {"N": "-1"}})  # an old value
    with bulk_standin.running(moto, refuse=frozenset({held, absent})) as standin:
        out = subprocess.run(start(dump, table, standin, ledger), capture_output=True,
                             text=True, env=os.environ.copy())  # fmt: skip
        assert out.returncode != 0
        run_id = out.stdout.split()[0]
        assert "StartBulkPutItems refused 2 items: reading the table back" in out.stderr
        got = {i["pk"]["S"]: i for i in mddb.scan(TableName=table)["Items"]}
        assert absent not in got and got[held]["n"] == {"N": "-1"}
        st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
        assert (st["state"], st["dead_letters"]) == ("completed_with_failures", 2)
        assert f"its report is under {via_of(table)}report/" in st["error"]
        letters = st["dead_letter_details"]["first"]
        assert sorted((d["index"], d["code"]) for d in letters) == sorted(
            (last[k], "StartBulkPutItemsRefused") for k in (held, absent)
        )
        again = rimport("retry-failed", run_id, "--ledger", ledger)
        assert again.returncode == 0, again.stderr
    assert_table_equals(mddb, table, items)
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert st["dead_letters"] == 0
