"""Shared fixtures. DynamoDB Local is started once per test session on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import settings

# These machines are shared and noisy: a property holds or not whatever one example took.
settings.register_profile("shared", deadline=None)
settings.load_profile("shared")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import dynamodb_local  # noqa: E402
import moto_server  # noqa: E402

from resumable_import.errors import Text  # noqa: E402


def _refuse_flattening(self: Text, spec: str) -> str:
    """In the tests, an f-string of a Text that names an argument or a command fails: it
    would hand the CLI a Python caller's words (`format='jsonl'`) where it says flags."""
    if any(not isinstance(part, str) for part in self.parts):
        raise AssertionError(f"a Text with arguments was formatted into a str: {self.parts!r}")
    return str.__format__(self, spec)


Text.__format__ = _refuse_flattening  # type: ignore[method-assign]

# DynamoDB Local keeps one database per access key and region: the tests and every rimport
# process they start must agree on both.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "rimporttests",
    "AWS_SECRET_ACCESS_KEY": "rimporttests",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> Iterator[None]:
    saved = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION",
                 "AWS_CA_BUNDLE"):  # fmt: skip
        os.environ.pop(name, None)
    os.environ.update(AWS_ENV)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def endpoint(_aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real DynamoDB Local for this test session."""
    log = tmp_path_factory.mktemp("ddb") / "dynamodb-local.log"
    with dynamodb_local.running(log=log) as url:
        yield url


@pytest.fixture(scope="session")
def ddb(endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture(scope="session")
def moto(_aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server for this test session; its URL."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server.running(log=log) as url:
        yield url


@pytest.fixture(scope="session")
def mddb(moto: str) -> Iterator[Any]:
    client = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
    yield client
    client.close()  # moto's server waits for its open keep-alive connections as it stops


@pytest.fixture(scope="module")
def stage_s3(moto: str) -> Iterator[Any]:
    """moto's S3 on the server that also serves DynamoDB (ImportTable reads its S3)."""
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB")}
    os.environ["AWS_ENDPOINT_URL_S3"] = moto
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = moto
    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    client.create_bucket(Bucket="stage")
    yield client
    client.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_tables = iter(range(10**6))


@pytest.fixture
def table(ddb: Any, request: pytest.FixtureRequest) -> str:
    """A new empty table keyed by `pk` (a string)."""
    name = f"t{next(_tables)}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite"


# The console script that `pip install` made, beside this interpreter.
RIMPORT = str(Path(sys.executable).parent / "rimport")


def rimport(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process."""
    return subprocess.run(
        [RIMPORT, *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
    )  # fmt: skip


def wait_for_checkpoint(
    proc: subprocess.Popen[str], book: Any, run_id: str, items: int, timeout: float = 120
) -> None:
    """Wait until the run that `proc` is running has committed at least `items`."""
    deadline = time.monotonic() + timeout
    while book.run(run_id).items_committed < items:
        assert proc.poll() is None, f"rimport ended early: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.01)


def kill_when(proc: subprocess.Popen[str], book: Any, run_id: str, items: int) -> int:
    """SIGKILL `proc` once its run has committed at least `items`; return the checkpoint it
    died with (it may commit another batch between our look and the kill)."""
    wait_for_checkpoint(proc, book, run_id, items)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return int(book.run(run_id).items_committed)


def scan(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item of the table as plain Python values, by partition key.

    A parallel scan in small pages: DynamoDB Local serves one big sequential scan 4x slower.
    """
    des = TypeDeserializer()

    def segment(number: int) -> list[dict[str, Any]]:
        pages = ddb.get_paginator("scan").paginate(
            TableName=table, Segment=number, TotalSegments=4, PaginationConfig={"PageSize": 1000}
        )
        return [item for page in pages for item in page["Items"]]

    with ThreadPoolExecutor(4) as pool:
        raw = [item for part in pool.map(segment, range(4)) for item in part]
    out = {}
    for r in raw:
        item = {k: des.deserialize(v) for k, v in r.items()}
        out[item["pk"]] = item
    return out


def dump_items(path: Path) -> list[dict[str, Any]]:
    """The items of a small dump, read independently of rimport's reader."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".jsonl":
        return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    data = json.loads(text, parse_float=Decimal)
    return data if isinstance(data, list) else data["Items"]


def assert_table_equals(ddb: Any, table: str, expected: list[dict[str, Any]]) -> None:
    """The table holds exactly the expected items (last one wins per key), compared one by one."""
    assert_items_equal(scan(ddb, table), expected)


def assert_items_equal(got: dict[str, dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """`got` (plain items by partition key, as `scan` gives them) holds exactly the expected
    items, the last one winning per key."""
    want = {}
    for item in expected:
        want[item["pk"]] = item
    assert sorted(got) == sorted(want), "the table and the file hold different keys"
    for key, item in want.items():
        assert _normal(got[key]) == _normal(item), f"item {key} differs"


def _normal(value: Any) -> Any:
    """Tag scalars by kind so that True never equals 1, and compare numbers by value."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | Decimal):
        return ("number", Decimal(value).normalize())
    return (type(value).__name__, value)
