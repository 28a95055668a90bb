"""`verify` on the dumps issue 18 names, against real servers: an S3 object (read again,
refused once replaced), a run killed with SIGKILL and resumed, a table in moto's DynamoDB
changed behind rimport's back (by key and by scan), and a stream given again (its bytes
checked against the hash the run recorded, before anything is compared or recorded)."""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import RIMPORT, kill_when, rimport
from test_verify import elements, write_dump

from resumable_import import ImportOptions, Ledger, VerifyOptions, import_file, verify_run

_tables = iter(range(10**6))


def moto_table(mddb: Any) -> str:
    """A new empty table in moto's DynamoDB keyed by `pk` (a string)."""
    name = f"vsrc-{os.getpid()}-{next(_tables)}"
    mddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def verifications(ledger: Path) -> int:
    with sqlite3.connect(ledger) as db:
        return int(db.execute("SELECT count(*) FROM verifications").fetchone()[0])


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


# -- an S3 dump -----------------------------------------------------------------------------


@pytest.fixture
def s3(moto: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 (the session's moto server); rimport processes find it through
    AWS_ENDPOINT_URL_S3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto)
    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    client.create_bucket(Bucket="verify-dumps")
    yield client
    client.close()


def test_an_s3_dump_is_read_again_and_refused_once_the_object_is_replaced(
    s3: Any, moto: str, mddb: Any, ledger: Path
) -> None:
    table = moto_table(mddb)
    key = f"run-{next(_tables)}/dump.json.gz"
    url = f"s3://verify-dumps/{key}"
    body = gzip.compress(("[" + ",\n".join(map(json.dumps, elements(120))) + "]").encode())
    s3.put_object(Bucket="verify-dumps", Key=key, Body=body)
    out = rimport("start", url, "--table", table, "--endpoint", moto, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    with Ledger(ledger) as book:
        assert book.run(run_id).file_hash.startswith("s3:etag=")

    ok = rimport("verify", run_id, "--ledger", ledger)
    assert ok.returncode == 0, ok.stderr
    assert "verified 120 items: 120 identical, 0 missing, 0 different" in ok.stderr
    mddb.delete_item(TableName=table, Key={"pk": {"S": "k17"}})
    found = rimport("verify", run_id, "--ledger", ledger)
    assert found.returncode == 3, found.stderr
    assert "119 identical, 1 missing" in found.stderr
    assert "item 17 (pk=k17): missing" in found.stderr
    assert verifications(ledger) == 2

    s3.put_object(Bucket="verify-dumps", Key=key, Body=gzip.compress(b'[{"pk": "k0"}]'))
    refused = rimport("verify", run_id, "--ledger", ledger)
    assert refused.returncode == 2, refused.stderr
    (line,) = error_lines(refused.stderr)
    assert line.startswith(f"error: {url} has changed since run {run_id} read it")
    assert re.search(r"verified [\d,]+ item", refused.stderr) is None
    assert "resuming" not in refused.stderr
    assert (
        "hint: it no longer says what the table should hold; import the new object with "
        f"`rimport start {url}"
    ) in refused.stderr
    assert verifications(ledger) == 2


# -- a run killed with SIGKILL and resumed --------------------------------------------------


@pytest.mark.parametrize("server", ["dynamodb-local", "moto"])
def test_a_run_killed_and_resumed_verifies_identical(
    server: str, tmp_path: Path, ledger: Path, request: pytest.FixtureRequest
) -> None:
    if server == "moto":
        url = request.getfixturevalue("moto")
        table = moto_table(request.getfixturevalue("mddb"))
    else:
        url, table = request.getfixturevalue("endpoint"), request.getfixturevalue("table")
    count = 3_000
    dump = tmp_path / "dump.jsonl"
    dump.write_text("".join(json.dumps(e) + "\n" for e in elements(count)), encoding="utf-8")
    proc = subprocess.Popen(
        [RIMPORT, "start", str(dump), "--endpoint", url, "--table", table, "--ledger",
         str(ledger), "--max-wcu", "3000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.communicate()[1]
    with Ledger(ledger) as book:
        at = kill_when(proc, book, run_id, count // 4)
        assert book.run(run_id).state == "interrupted" and at < count

    early = rimport("verify", run_id, "--ledger", ledger)
    assert early.returncode == 2 and "finish it with `rimport resume" in early.stderr
    resumed = rimport("resume", run_id, "--ledger", ledger, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    for how in ("get", "scan"):
        done = rimport("verify", run_id, "--method", how, "--json", "--ledger", ledger)
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        assert (got["items"], got["identical"], got["missing"], got["different"]) == (
            count, count, 0, 0
        )  # fmt: skip


# -- a table in moto's DynamoDB changed behind rimport's back -------------------------------


@pytest.mark.parametrize("method", ["get", "scan"])
def test_moto_missing_and_different_items_but_not_a_number_written_anew(
    method: str, tmp_path: Path, moto: str, mddb: Any, ledger: Path
) -> None:
    table = moto_table(mddb)
    dump = write_dump(tmp_path / "d.json", elements(250))
    run_id = import_file(dump, table, ImportOptions(endpoint=moto), ledger=ledger).run_id
    options = VerifyOptions(method=method)
    same_table = verify_run(run_id, options, ledger=ledger)
    assert (same_table.items, same_table.identical, same_table.missing) == (250, 250, 0)
    assert same_table.ok and same_table.method == method

    for i in (3, 100, 249):
        mddb.delete_item(TableName=table, Key={"pk": {"S": f"k{i}"}})
    mddb.update_item(TableName=table, Key={"pk": {"S": "k7"}}, UpdateExpression="SET n = :v",
                     ExpressionAttributeValues={":v": {"N": "1.50"}})  # fmt: skip
    mddb.update_item(TableName=table, Key={"pk": {"S": "k8"}}, UpdateExpression="SET s = :v",
                     ExpressionAttributeValues={":v": {"S": "changed"}})  # fmt: skip
    result = verify_run(run_id, options, ledger=ledger)
    assert (result.items, result.identical, result.missing, result.different) == (250, 246, 3, 1)
    assert [(d.index, d.attributes) for d in result.differences] == [
        (3, None), (8, ["s"]), (100, None), (249, None)
    ]  # fmt: skip
    assert result.differences[1].key == {"pk": {"S": "k8"}}

    done = rimport("verify", run_id, "--method", method, "--json", "--ledger", ledger)
    assert done.returncode == 3, done.stderr
    assert ("verified 250 items: 246 identical, 3 missing, 1 different, 0 dead letters "
            "expected missing") in done.stderr  # fmt: skip
    assert "item 8 (pk=k8): differs in s" in done.stderr and "changed" not in done.stderr
    got = json.loads(done.stdout)
    assert (got["missing"], got["different"], got["method"]) == (3, 1, method)


# -- a stream given again -------------------------------------------------------------------


def piped(data: bytes, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([RIMPORT, *map(str, args)], input=data, capture_output=True,
                          timeout=300, env=os.environ.copy())  # fmt: skip


def streamed(data: bytes, table: str, endpoint: str, ledger: Path) -> str:
    out = piped(data, "start", "-", "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


def dump_text(items: list[Any]) -> bytes:
    return ("[" + ",\n".join(map(json.dumps, items)) + "]\n").encode()


def test_a_stream_given_again_is_verified_when_its_bytes_are_the_runs(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    data = gzip.compress(dump_text(elements(300)))
    run_id = streamed(data, table, endpoint, ledger)
    with Ledger(ledger) as book:
        run = book.run(run_id)
    assert run.source == "stream" and run.file_hash.startswith("sha256:")
    assert run.file_size == len(data)
    ok = piped(data, "verify", run_id, "--from", "-", "--ledger", ledger)
    assert ok.returncode == 0, ok.stderr
    assert b"verified 300 items: 300 identical" in ok.stderr
    saved = tmp_path / "again.json.gz"
    saved.write_bytes(data)
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k5"}})
    found = rimport("verify", run_id, "--from", saved, "--ledger", ledger)
    assert found.returncode == 3, found.stderr
    assert "299 identical, 1 missing" in found.stderr
    assert verifications(ledger) == 2


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda d: d.replace(b",\n", b", \n", 1), id="the-same-items-spelled-anew"),
        pytest.param(lambda d: d.replace(b'"v7"', b'"v7!"'), id="one-item-changed"),
        pytest.param(lambda d: d + b'{"pk": "k0"}\n', id="more-bytes-after-the-array"),
        pytest.param(lambda d: d[: len(d) // 2], id="cut-short"),
        pytest.param(lambda d: b"", id="nothing"),
    ],
)
def test_a_stream_given_again_with_other_bytes_is_refused_and_nothing_recorded(
    other: Any, endpoint: str, table: str, ledger: Path
) -> None:
    data = dump_text(elements(200))
    run_id = streamed(data, table, endpoint, ledger)
    given = other(data)
    assert given != data
    refused = piped(given, "verify", run_id, "--from", "-", "--ledger", ledger)
    stderr = refused.stderr.decode()
    assert refused.returncode == 2, stderr
    (line,) = error_lines(stderr)
    assert line.startswith(f"error: standard input: these are not the bytes run {run_id} "
                           "imported from its stream"), line  # fmt: skip
    assert f"given {len(given):,} bytes" in line
    assert ("hint: give it the stream the run read, e.g. cat DUMP | "
            f"`rimport verify {run_id} --from - --ledger {ledger}`") in stderr  # fmt: skip
    assert re.search(r"verified [\d,]+ item", stderr) is None  # no comparison reported
    assert verifications(ledger) == 0
    shown = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert "verified" not in shown


def test_a_stream_run_killed_and_resumed_is_verified_from_the_same_bytes(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    """The hash a resumed stream run records covers the whole stream, read again from its
    start by `resume --from`: the same bytes verify, others are refused."""
    count = 3_000
    dump = tmp_path / "dump.jsonl"
    dump.write_text("".join(json.dumps(e) + "\n" for e in elements(count)), encoding="utf-8")
    with dump.open("rb") as given:
        proc = subprocess.Popen(
            [RIMPORT, "start", "-", "--endpoint", endpoint, "--table", table, "--ledger",
             str(ledger), "--max-wcu", "3000"],
            stdin=given, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=os.environ.copy(),
        )  # fmt: skip
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.communicate()[1]
        with Ledger(ledger) as book:
            kill_when(proc, book, run_id, count // 4)
    data = dump.read_bytes()
    nowhere = rimport("resume", run_id, "--from", tmp_path / "none.jsonl", "--ledger", ledger)
    assert nowhere.returncode == 2 and "unexpected" not in nowhere.stderr, nowhere.stderr
    assert f"cannot read run {run_id}'s stream again from it (No such file" in nowhere.stderr
    resumed = piped(data, "resume", run_id, "--from", "-", "--ledger", ledger)
    assert resumed.returncode == 0, resumed.stderr
    with Ledger(ledger) as book:
        run = book.run(run_id)
    assert (run.state, run.file_size) == ("completed", len(data))

    ok = piped(data, "verify", run_id, "--from", "-", "--ledger", ledger)
    assert ok.returncode == 0, ok.stderr
    assert f"verified {count:,} items: {count:,} identical".encode() in ok.stderr
    other = data.replace(b'"v2999"', b'"v2999?"')
    refused = piped(other, "verify", run_id, "--from", "-", "--ledger", ledger)
    assert refused.returncode == 2, refused.stderr
    assert f"these are not the bytes run {run_id} imported".encode() in refused.stderr
    assert verifications(ledger) == 1


def test_from_a_path_that_cannot_be_read_is_one_line_and_exit_2(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    run_id = streamed(dump_text(elements(5)), table, endpoint, ledger)
    for where, why in ((tmp_path / "none.json", "No such file"), (tmp_path, "Is a directory")):
        refused = rimport("verify", run_id, "--from", where, "--ledger", ledger)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(
            f"error: {where}: cannot read run {run_id}'s stream again from it ({why}"
        ), refused.stderr
        assert "unexpected" not in refused.stderr
    assert verifications(ledger) == 0
