"""Dumps read from where they live: standard input, a FIFO, a process substitution, S3.

The CLI is run as users run it, with real pipes (`cat dump | rimport start -`), a real
FIFO, and moto's S3 in server mode; never a mock of boto3.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import make_dump
import moto_server
import pytest
from conftest import RIMPORT, assert_table_equals, dump_items, kill_when, rimport

from resumable_import.cli.hints import spelled
from resumable_import.errors import InputError
from resumable_import.ledger import Ledger
from resumable_import.options import Recorded, WriteSettings
from resumable_import.sources import PrefixHash, _Rewindable

ITEMS = 6_000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dump.write(tmp_path_factory.mktemp("sources") / "small.json", 2000)


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dump.write(tmp_path_factory.mktemp("sources") / "dump.json", ITEMS)


def piped(args: list[str | Path], data: bytes | Path) -> subprocess.Popen[str]:
    """`rimport ARGS` reading `data` through a real pipe (`cat FILE |` for a path)."""
    if isinstance(data, Path):
        cat = subprocess.Popen(["cat", str(data)], stdout=subprocess.PIPE)
        stdin: Any = cat.stdout
    else:
        stdin = subprocess.PIPE
    proc = subprocess.Popen(
        [RIMPORT, *map(str, args)], stdin=stdin, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    if isinstance(data, Path):
        cat.stdout.close()  # type: ignore[union-attr]  # rimport holds the read end
        _cats[proc.pid] = cat
    else:
        feed, proc.stdin = proc.stdin, None  # the thread's alone: `communicate` leaves it be
        threading.Thread(target=_feed, args=(feed, data), daemon=True).start()
    return proc


_cats: dict[int, subprocess.Popen[bytes]] = {}


def _feed(stdin: Any, data: bytes) -> None:
    """Write `data` into the pipe, then close it, even when rimport stopped reading first
    (it refuses a stream once it has read enough of it): no pipe is left for the GC."""
    try:
        stdin.buffer.write(data)
    except (BrokenPipeError, ValueError):
        pass
    finally:
        with contextlib.suppress(BrokenPipeError, ValueError):
            stdin.close()


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    if cat := _cats.pop(proc.pid, None):
        cat.wait()
    return proc.returncode, out, err


# -- the pieces ---------------------------------------------------------------------------


def test_a_stream_goes_back_to_its_start_while_its_head_is_kept_and_refuses_after() -> None:
    data = bytes(range(256)) * 64  # 16 KiB
    r = _Rewindable(io.BytesIO(data), "standard input", keep=4096)  # type: ignore[arg-type]
    reader = io.BufferedReader(r, buffer_size=1024)
    assert reader.read(3000) == data[:3000]
    reader.seek(0)
    assert reader.read(10) == data[:10]
    reader = io.BufferedReader(r, buffer_size=1024)
    reader.seek(0)
    assert reader.read() == data  # through the head into the rest
    assert r.consumed == len(data)
    assert r.hash.hexdigest() == hashlib.sha256(data).hexdigest()
    with pytest.raises(InputError, match="cannot be read twice") as e:
        r.seek(0)
    assert "--format jsonl, or --items-path" in spelled(e.value.hint)


def test_the_prefix_hash_is_the_sha256_of_the_bytes_before_each_checkpoint() -> None:
    data = os.urandom(10_000)
    prefix = PrefixHash()
    prefix.add(0, data[:100])  # a first look, then the reader starts over
    at = 0
    for size in (7, 4000, 1, 2992, 3000):
        prefix.add(at, data[at : at + size])
        at += size
    for offset in (0, 5, 7, 3000, 4007, 9999, 10_000):
        assert prefix.upto(offset) == "sha256:" + hashlib.sha256(data[:offset]).hexdigest()
    assert prefix.upto(10_001) is None  # not read yet


# -- validate: no DynamoDB needed ---------------------------------------------------------


def test_validate_reads_a_pipe_gzip_through_a_pipe_and_a_fifo(small: Path, tmp_path: Path) -> None:
    code, out, err = finish(piped(["validate", "-", "--key", "pk:S"], small))
    assert code == 0, err
    assert "standard input: array, 2,000 items" in out

    data = gzip.compress(small.read_bytes())
    code, out, err = finish(piped(["validate", "-", "--key", "pk:S"], data))
    assert code == 0, err
    assert "standard input: array+gzip, 2,000 items" in out

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(f"gzip -c {small} > {fifo}", shell=True)
    out = rimport("validate", fifo, "--key", "pk:S")
    writer.wait()
    assert out.returncode == 0, out.stderr
    assert "array+gzip, 2,000 items" in out.stdout


def test_a_wrapper_whose_items_start_past_the_kept_head_of_a_pipe_is_refused_with_a_hint() -> None:
    data = b"{" + b" " * (17 << 20) + b'"Items": [{"pk": "a"}]}'
    code, _, err = finish(piped(["validate", "-", "--key", "pk:S"], data))
    assert code == 2, err
    assert "error: standard input: the layout of this stream cannot be told" in err
    assert "--items-path" in err and "Traceback" not in err
    code, _, err = finish(piped(["validate", "-", "--key", "pk:S", "--items-path", "Items"], data))
    assert code == 0, err


# -- start and resume through pipes -------------------------------------------------------


def test_cat_into_start_dash_imports_and_records_the_stream(
    small: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    proc = piped(
        ["start", "-", "--table", table, "--endpoint", endpoint, "--ledger", ledger], small
    )
    code, out, err = finish(proc)
    assert code == 0, err
    assert_table_equals(ddb, table, dump_items(small))
    with Ledger(ledger) as book:
        run = book.run(out.strip())
    assert (run.file, run.source, run.state) == ("-", "stream", "completed")
    assert run.file_size == small.stat().st_size
    assert run.file_hash == "sha256:" + hashlib.sha256(small.read_bytes()).hexdigest()


def test_start_without_a_table_on_a_pipe_says_to_name_one(dump: Path) -> None:
    code, _, err = finish(piped(["start", "-"], dump))
    assert code == 2
    assert "standard input has no file name" in err and "--table" in err


def test_a_piped_run_killed_midway_resumes_from_the_same_bytes_and_refuses_others(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path, tmp_path: Path
) -> None:
    compressed = tmp_path / "dump.json.gz"
    compressed.write_bytes(gzip.compress(dump.read_bytes(), compresslevel=1))
    args: list[str | Path] = ["--ledger", ledger]
    proc = piped(["start", "-", "--table", table, "--endpoint", endpoint, *args], compressed)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    with Ledger(ledger) as book:
        at = kill_when(proc, book, run_id, ITEMS // 3)
        assert 0 < at < ITEMS

    out = rimport("resume", run_id, *args)
    assert out.returncode == 2, out.stderr
    assert "from a stream" in out.stderr and f"rimport resume {run_id} --from -" in out.stderr

    other = dump.read_bytes().replace(b'"pk": "', b'"pk": "x', 1)  # one byte differs
    code, _, err = finish(piped(["resume", run_id, "--from", "-", *args], other))
    assert code == 2, err
    assert "differ from those run" in err

    code, _, err = finish(piped(["resume", run_id, "--from", "-", *args], compressed))
    assert code == 0, err
    assert f"run {run_id}: completed: {ITEMS:,} items read" in err
    assert_table_equals(ddb, table, dump_items(dump))
    with Ledger(ledger) as book:
        run = book.run(run_id)
    assert run.file_hash == "sha256:" + hashlib.sha256(compressed.read_bytes()).hexdigest()


def test_from_is_refused_for_a_run_on_a_file(
    small: Path, endpoint: str, table: str, ledger: Path
) -> None:
    out = rimport("start", small, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    out = rimport("resume", run_id, "--from", "-", "--ledger", ledger)
    assert out.returncode == 2
    assert "not a stream" in out.stderr


# -- S3 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto's S3 in server mode; rimport processes find it through AWS_ENDPOINT_URL_S3."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server.running(log=log) as url:
        saved = os.environ.get("AWS_ENDPOINT_URL_S3")
        os.environ["AWS_ENDPOINT_URL_S3"] = url
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        client.create_bucket(Bucket="dumps")
        yield client
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL_S3", None)
        else:
            os.environ["AWS_ENDPOINT_URL_S3"] = saved


def test_start_reads_a_gzip_object_from_s3(
    dump: Path, s3: Any, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    s3.put_object(Bucket="dumps", Key="in/dump.json.gz", Body=gzip.compress(dump.read_bytes()))
    url = "s3://dumps/in/dump.json.gz"
    out = rimport("start", url, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert_table_equals(ddb, table, dump_items(dump))
    with Ledger(ledger) as book:
        run = book.run(out.stdout.strip())
    assert (run.file, run.source) == (url, "s3")
    assert run.file_hash.startswith("s3:etag=")


def test_profile_gives_s3_its_credentials_and_endpoint_as_it_gives_dynamodbs(
    dump: Path, s3: Any, endpoint: str, ddb: Any, table: str, ledger: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Only the profile knows where S3 is (its `services` section) and holds the keys:
    `--profile` must reach the reading of an s3:// dump, not DynamoDB's client alone."""
    s3.put_object(Bucket="dumps", Key="profiled.json", Body=dump.read_bytes())
    moto_url = os.environ["AWS_ENDPOINT_URL_S3"]
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile stored]\nregion = us-east-1\naws_access_key_id = rimporttests\n"
        "aws_secret_access_key = rimporttests\nservices = stored-services\n\n"
        f"[services stored-services]\ns3 =\n  endpoint_url = {moto_url}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    out = rimport("start", "s3://dumps/profiled.json", "--table", table, "--endpoint", endpoint,
                  "--ledger", ledger, "--profile", "stored")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert_table_equals(ddb, table, dump_items(dump))


def test_resume_refuses_an_s3_object_replaced_since_the_run_read_it(s3: Any, ledger: Path) -> None:
    s3.put_object(Bucket="dumps", Key="later.jsonl", Body=b'{"pk": "a"}\n')
    with Ledger(ledger) as book:
        run = book.create_run(
            file="s3://dumps/later.jsonl", file_size=12, file_hash='s3:etag="old";version=null',
            table="t", endpoint="http://127.0.0.1:9", region="us-east-1", format="auto",
            shape="jsonl", options=Recorded(WriteSettings(concurrency=1)), source="s3",
        )  # fmt: skip
        book.set_state(run.id, "interrupted")
    out = rimport("resume", run.id, "--ledger", ledger)
    assert out.returncode == 2, out.stderr
    assert f"error: s3://dumps/later.jsonl has changed since run {run.id} read it" in out.stderr


def test_an_s3_folder_imports_each_dump_under_it_and_skips_them_the_second_time(
    s3: Any, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    one = [{"pk": f"a{i}", "n": i} for i in range(30)]
    two = [{"pk": f"b{i}", "s": "x" * i} for i in range(20)]
    s3.put_object(Bucket="dumps", Key="folder/one.json", Body=json.dumps(one).encode())
    body = gzip.compress("".join(json.dumps(i) + "\n" for i in two).encode())
    s3.put_object(Bucket="dumps", Key="folder/two.jsonl.gz", Body=body)
    s3.put_object(Bucket="dumps", Key="folder/notes.txt", Body=b"not a dump")
    s3.put_object(Bucket="dumps", Key="folder/deeper/three.json", Body=b"[]")
    args = ["--table", table, "--endpoint", endpoint, "--ledger", ledger]
    out = rimport("start", "s3://dumps/folder/", *args)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 2  # one run per dump, none for the rest
    assert_table_equals(ddb, table, one + two)
    again = rimport("start", "s3://dumps/folder/", *args)
    assert again.returncode == 0, again.stderr
    assert "2 of 2 files done" in again.stderr and again.stdout == ""


def test_an_s3_export_folder_is_checked_against_its_manifests(s3: Any) -> None:
    lines = b"".join(
        json.dumps({"Item": {"pk": {"S": f"k{i}"}}}).encode() + b"\n" for i in range(10)
    )
    data = gzip.compress(lines)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    files = [
        {"itemCount": 10, "md5Checksum": md5, "dataFileS3Key": "AWSDynamoDB/1/data/good.json.gz"},
        {"itemCount": 10, "md5Checksum": md5, "dataFileS3Key": "AWSDynamoDB/1/data/bad.json.gz"},
    ]
    summary = {"tableArn": "arn:aws:dynamodb:us-east-1:1:table/exp", "itemCount": 20}
    put = s3.put_object
    put(Bucket="dumps", Key="export/manifest-summary.json", Body=json.dumps(summary).encode())
    put(Bucket="dumps", Key="export/manifest-files.json",
        Body="".join(json.dumps(f) + "\n" for f in files).encode())  # fmt: skip
    put(Bucket="dumps", Key="export/data/good.json.gz", Body=data)
    put(Bucket="dumps", Key="export/data/bad.json.gz", Body=data[:-5])
    out = rimport("validate", "s3://dumps/export/", "--key", "pk:S")
    assert out.returncode == 2, out.stderr
    assert "s3://dumps/export/data/good.json.gz: jsonl+gzip, 10 items" in out.stdout + out.stderr
    assert "bad.json.gz: its MD5 does not match manifest-files.json" in out.stdout + out.stderr


def test_s3_errors_are_one_line_naming_the_url(s3: Any, table: str, ledger: Path) -> None:
    for url, what in [
        ("s3://no-such-bucket/dump.json", "there is no bucket 'no-such-bucket'"),
        ("s3://dumps/missing.json", "no such object"),
    ]:
        out = rimport("validate", url, "--key", "pk:S")
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"error: {url}: {what}"), out.stderr
        assert "Traceback" not in out.stderr


def test_an_unreachable_s3_endpoint_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}
    out = subprocess.run(
        [RIMPORT, "validate", "s3://dumps/dump.json", "--key", "pk:S"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: s3://dumps/dump.json: cannot reach S3"), out.stderr


def test_a_stream_broken_among_its_first_items_is_judged_then_stopped_where_it_breaks() -> None:
    """The key check reads the first items of a stream once and keeps them; the reading
    proper starts with them and stops where they broke, naming the place."""
    good = b"".join(b'{"pk": "k%d"}\n' % i for i in range(60))
    code, out, err = finish(piped(["validate", "-", "--key", "pk:S"], good + b'{"pk": \n'))
    assert code == 2, err
    assert "standard input: jsonl, 60 items" in out
    assert "item 60" in out and "Traceback" not in err
