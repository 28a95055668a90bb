"""One contract, four backends: the same writer and run tests against the in-memory fake,
DynamoDB Local, moto in server mode, and DynamoDB Local written by two writer processes
(the `backend` fixture), and the fake checked against DynamoDB Local, request by request.

The writer tests hold a `BatchWriter` to the contract its docstring states (what lands,
what comes back as a dead letter, what raises), through `submit` and `poll` only, so that
another writer can be run through them as it is. The run tests go through the library API.
The fake is only worth its speed if it refuses what DynamoDB refuses, in the same words:
`test_the_fake_answers_as_dynamodb_local_does` sends both the same raw requests.

Each test is small (a few dozen items): it runs three times.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import make_dump
import orjson
import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import assert_items_equal, dump_items
from fakes import FakeDynamo

from resumable_import import (
    ImportOptions,
    ImportResult,
    InputError,
    Ledger,
    ServiceError,
    import_file,
    run_status,
)
from resumable_import.dynamo import connect
from resumable_import.keys import Key, key_of
from resumable_import.transport import SyncTransport, open_transport
from resumable_import.workers import ProcessWriter, WriterSpec
from resumable_import.writer import BatchWriter, Job, RetryPolicy, Writer

# Real servers answer at once; the retries that do happen (a split) need not wait.
POLICY = RetryPolicy(base_delay=0.001, max_delay=0.05)
_tables = iter(range(10**6))


class FakeEndpoint:
    """Fakes as one endpoint: each table is its own `FakeDynamo`; a request to any other
    table meets a fake that has none of that name, and answers as it would."""

    def __init__(self) -> None:
        self.tables: dict[str, FakeDynamo] = {}
        self._nowhere = FakeDynamo(table="")

    def _table(self, name: str) -> FakeDynamo:
        return self.tables.get(name, self._nowhere)

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return self._table(TableName).describe_table(TableName=TableName)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        return self._table(next(iter(RequestItems))).batch_write_item(RequestItems=RequestItems)


@dataclass
class Backend:
    """Where the contract runs: `fake`, `dynamodb-local` or `moto`."""

    name: str
    client: Any  # for the table calls, and what a fake run is given as `client=`
    url: str | None = None  # the endpoint of a real server
    connection: Any = None  # rimport's own client and credentials for it
    workers: int = 1  # writer processes (`workers.ProcessWriter`) when more than one
    _open: list[BatchWriter] = field(default_factory=list)

    def table(self) -> str:
        """A new empty table keyed by `pk` (a string)."""
        name = f"contract-{next(_tables)}"
        if isinstance(self.client, FakeEndpoint):
            self.client.tables[name] = FakeDynamo(table=name)
        else:
            self.client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        return name

    def writer(self, table: str, **options: Any) -> BatchWriter:
        """The writer under contract, on the transport a run would give it here."""
        if self.workers > 1:
            assert self.url is not None
            spec = WriterSpec(self.url, "us-east-1", None, table, ("pk",), POLICY,
                              options.pop("max_inflight", 1), options.pop("max_wcu", None),
                              options.pop("entries", False))  # fmt: skip
            writer: BatchWriter = ProcessWriter(self.workers, spec, **options)
            self._open.append(writer)
            return writer
        if self.connection is None:
            transport = SyncTransport(self.client)
        else:
            transport = open_transport(self.connection.client, self.connection.credentials)
        writer = Writer(transport, table, ("pk",), POLICY, **options)
        assert isinstance(writer, BatchWriter)
        self._open.append(writer)
        return writer

    def stored(self, table: str) -> dict[str, dict[str, Any]]:
        """The table's items in DynamoDB JSON (binary as bytes, as boto3 gives it), by key."""
        if isinstance(self.client, FakeEndpoint):
            raw = [_as_boto3(item) for item in self.client.tables[table].items.values()]
        else:
            pages = self.client.get_paginator("scan").paginate(TableName=table)
            raw = [item for page in pages for item in page["Items"]]
        return {item["pk"]["S"]: item for item in raw}

    def plain(self, table: str) -> dict[str, dict[str, Any]]:
        des = TypeDeserializer()
        return {
            key: {name: des.deserialize(v) for name, v in item.items()}
            for key, item in self.stored(table).items()
        }

    def import_file(
        self, dump: Path, table: str, ledger: Path, options: ImportOptions = ImportOptions()
    ) -> ImportResult:
        """A run through the library API, as a program using rimport would start it."""
        if self.url:
            settings = replace(options.settings, workers=self.workers)
            options = replace(options, endpoint=self.url, settings=settings)
            return import_file(dump, table, options, ledger=ledger)
        return import_file(dump, table, options, ledger=ledger, client=self.client)

    def close(self) -> None:
        for writer in self._open:
            writer.close()


def _as_boto3(value: Any) -> Any:
    """An item as it went on the wire (binary in base64) as boto3 would read it back."""
    if isinstance(value, dict):
        if len(value) == 1 and (kind := next(iter(value))) in ("B", "BS"):
            x = value[kind]
            return {kind: base64.b64decode(x) if kind == "B" else [base64.b64decode(e) for e in x]}
        return {k: _as_boto3(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_boto3(v) for v in value]
    return value


@pytest.fixture(params=["fake", "dynamodb-local", "moto", "2 writer processes"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend in turn; a real server is started (once a session) only when asked for.
    The last is DynamoDB Local written by the second writer, two processes."""
    if request.param == "fake":
        chosen = Backend("fake", FakeEndpoint())
    else:
        local = request.param != "moto"
        url = request.getfixturevalue("endpoint" if local else "moto")
        client = request.getfixturevalue("ddb" if local else "mddb")
        workers = 2 if request.param == "2 writer processes" else 1
        chosen = Backend(request.param, client, url, _connection(url), workers)
    yield chosen
    chosen.close()


_connections: dict[str, Any] = {}


def _connection(url: str) -> Any:
    """rimport's client for a server, made once: a boto3 session is slow to make."""
    if url not in _connections:
        _connections[url] = connect(url, None)
    return _connections[url]


# -- what goes in -----------------------------------------------------------------------


def typed_item(i: int, rng: random.Random) -> dict[str, Any]:
    """An item in DynamoDB JSON using every type, with numbers at the edges of what DynamoDB
    keeps (38 digits, tiny and huge exponents) and binary that is not text; the edge numbers
    sit in a set, whose members moto returns at little cost (it spends about 0.2 ms of CPU
    on each attribute value it returns)."""

    def blob() -> str:
        return base64.b64encode(rng.randbytes(rng.randint(1, 40))).decode()

    digits = "".join(rng.choice("0123456789") for _ in range(37))
    return {
        "pk": {"S": f"typed#{i:06d}"},
        "n": {"N": str(i)},
        "exact": {"N": f"-{rng.randint(1, 9)}{digits}"},
        "text": {"S": rng.choice(make_dump.WORDS)},
        "bin": {"B": blob()},
        "ok": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "ss": {"SS": sorted({rng.choice(make_dump.WORDS) for _ in range(3)})},
        "ns": {"NS": [str(i), "0.10", f"{rng.randint(1, 9)}.5E-{rng.randint(100, 129)}",
                      f"-9.{rng.randint(0, 10**6)}E+{rng.randint(100, 125)}"]},
        "bs": {"BS": list(dict.fromkeys(blob() for _ in range(3)))},
        "m": {"M": {
            "l": {"L": [{"N": "1.50"}, {"NULL": True}, {"B": blob()}, {"M": {"s": {"S": ""}}}]},
            "deep": {"M": {"empty": {"L": []}}},
        }},
    }  # fmt: skip


def typed_value(value: dict[str, Any]) -> Any:
    """One DynamoDB JSON attribute as comparable data: numbers by value, binary as bytes
    (base64 in the file, bytes from boto3), sets without order. Tagged by type, so an S
    never equals an N."""
    ((kind, x),) = value.items()

    def binary(b: str | bytes) -> bytes:
        return base64.b64decode(b) if isinstance(b, str) else bytes(b)

    if kind == "N":
        return ("N", Decimal(x))
    if kind == "B":
        return ("B", binary(x))
    if kind == "NS":
        return ("NS", frozenset(Decimal(e) for e in x))
    if kind == "BS":
        return ("BS", frozenset(binary(e) for e in x))
    if kind == "SS":
        return ("SS", frozenset(x))
    if kind == "M":
        return ("M", {k: typed_value(v) for k, v in x.items()})
    if kind == "L":
        return ("L", [typed_value(v) for v in x])
    return (kind, x)


def comparable(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: {k: typed_value(v) for k, v in item.items()} for key, item in items.items()}


def by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["pk"]["S"]: item for item in items}


def batch(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"pk": {"S": f"k{i}"}, "v": {"N": str(i)}} for i in range(start, start + n)]


def wire(items: list[dict[str, Any]]) -> tuple[list[bytes], list[Key | None]]:
    """Items as a writer takes them: attribute maps serialized, as they go in the request,
    with the key of each."""
    return [orjson.dumps(item) for item in items], [key_of(item, ("pk",)) for item in items]


def finish(writer: BatchWriter, *jobs: Job) -> None:
    while not all(job.done for job in jobs):
        writer.poll(block=True)


# -- the writer -------------------------------------------------------------------------


def test_batches_land_item_for_item(backend: Backend) -> None:
    table = backend.table()
    writer = backend.writer(table, max_inflight=3)
    rng = random.Random(4)
    items = [typed_item(i, rng) for i in range(60)]
    jobs = [writer.submit(*wire(items[i : i + 20])) for i in range(0, 60, 20)]
    assert not any(job.done for job in jobs), "acknowledged before anything was sent"
    assert writer.submit([], []).done
    finish(writer, *jobs)
    assert [job.failures for job in jobs] == [[], [], []]
    assert comparable(backend.stored(table)) == comparable(by_key(items))
    assert writer.throttled == 0 and writer.pace is None


def test_one_key_twice_in_a_job_is_written_not_dead_lettered(backend: Backend) -> None:
    """DynamoDB refuses the request (the caller should never send one), and the writer
    writes both items all the same, in no promised order."""
    table = backend.table()
    writer = backend.writer(table)
    items = batch(25)
    items[3]["pk"] = items[20]["pk"] = {"S": "twice"}
    job = writer.submit(*wire(items))
    finish(writer, job)
    assert job.failures == []
    stored = backend.plain(table)
    assert sorted(stored) == sorted({f"k{i}" for i in range(25)} - {"k3", "k20"} | {"twice"})
    assert stored["twice"]["v"] in (3, 20)


REFUSED = {
    # DynamoDB's words, where all three backends use the same (moto words a missing key and
    # a key of the wrong type its own way, hence a prefix)
    "over 400 KB": (
        {"pk": {"S": "big"}, "blob": {"S": "x" * 410_000}},
        "Item size has exceeded the maximum allowed size",
    ),
    "wrong key type": (
        {"pk": {"N": "5"}},
        "One or more parameter values were invalid: Type mismatch for key",
    ),
    "empty string key": (
        {"pk": {"S": ""}},
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk",
    ),
    "no key": ({"v": {"S": "keyless"}}, ""),
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_item_dynamodb_refuses_is_dead_lettered_alone(backend: Backend, case: str) -> None:
    item, words = REFUSED[case]
    table = backend.table()
    writer = backend.writer(table)
    items = batch(25)
    items[11] = item
    job = writer.submit(*wire(items))
    finish(writer, job)
    (failure,) = job.failures
    assert (failure.position, failure.code, failure.retryable) == (11, "ValidationException", False)
    assert failure.message.startswith(words) and failure.attempts >= 1
    assert sorted(backend.plain(table)) == sorted(f"k{i}" for i in range(25) if i != 11)


def test_a_missing_table_raises_and_acknowledges_nothing(backend: Backend) -> None:
    writer = backend.writer("no-such-table")
    job = writer.submit(*wire(batch(3)))
    with pytest.raises(ServiceError) as stopped:
        finish(writer, job)
    assert stopped.value.message.startswith(
        "DynamoDB refused the write to table 'no-such-table': ResourceNotFoundException: "
    )
    assert "table" in (stopped.value.hint or "")
    assert not job.done and job.failures == []


# -- whole runs -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["array", "object", "jsonl"])
def test_a_dump_lands_item_for_item(
    tmp_path: Path, backend: Backend, ledger: Path, shape: str
) -> None:
    count = 60
    table = backend.table()
    dump = make_dump.write(tmp_path / f"dump{'.jsonl' if shape == 'jsonl' else '.json'}",
                           count, shape)  # fmt: skip
    result = backend.import_file(dump, table, ledger)
    got = (result.state, result.items_committed, result.items_written, result.dead_letters)
    assert got == ("completed", count, count, 0)
    assert_items_equal(backend.plain(table), dump_items(dump))
    (run,) = run_status(ledger=ledger)
    assert run.shape == {"array": "array", "object": "object:Items", "jsonl": "jsonl"}[shape]
    assert run.file_hash.startswith("sha256:")
    assert backend.url is None or run.endpoint == backend.url


def test_bad_items_are_dead_lettered_and_the_rest_written(
    tmp_path: Path, backend: Backend, ledger: Path
) -> None:
    table = backend.table()
    items: list[Any] = [{"pk": f"k{i}", "v": i} for i in range(40)]
    items[7] = {"pk": "k7", "blob": "x" * 410_000}  # over DynamoDB's 400 KB item limit
    items[23] = {"no_key": True}
    items[30] = 17
    items[35] = {"pk": 5}  # the key has the wrong type
    dump = tmp_path / "d.json"
    dump.write_text(json.dumps(items))
    result = backend.import_file(dump, table, ledger)
    assert (result.state, result.items_committed, result.dead_letters, result.retryable) == (
        "completed_with_failures", 40, 4, 0,
    )  # fmt: skip
    assert_items_equal(
        backend.plain(table), [items[i] for i in range(40) if i not in (7, 23, 30, 35)]
    )
    with Ledger(ledger) as book:
        letters = book.dead_letters(result.run_id)
    assert [(d.index, d.code, d.retryable) for d in letters] == [
        (7, "ItemTooLarge", False), (23, "MissingKey", False), (30, "NotAnObject", False),
        (35, "KeyType", False),
    ]  # fmt: skip


def test_a_dynamodb_json_dump_lands_with_every_type(
    tmp_path: Path, backend: Backend, ledger: Path
) -> None:
    table = backend.table()
    rng = random.Random(10)
    items = [typed_item(i, rng) for i in range(60)]
    dump = tmp_path / "scan.json"  # as `aws dynamodb scan` writes it
    dump.write_text(json.dumps({"Items": items, "Count": 60, "ScannedCount": 60}, indent=1))
    with pytest.raises(InputError, match="as DynamoDB's own JSON"):  # not without being told
        backend.import_file(dump, table, ledger)
    assert backend.stored(table) == {}
    result = backend.import_file(dump, table, ledger, ImportOptions(format="ddb-json"))
    assert (result.state, result.items_written, result.dead_letters) == ("completed", 60, 0)
    assert comparable(backend.stored(table)) == comparable(by_key(items))


# -- the fake against DynamoDB Local ----------------------------------------------------


def _put(item: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": item}}


def _ok(key: str, **more: dict[str, Any]) -> dict[str, Any]:
    return _put({"pk": {"S": key}, **more})


BIG = _put({"pk": {"S": "big"}, "blob": {"S": "x" * 410_000}})
TYPED = _put({"pk": {"N": "5"}})
# (the table to write to, or None for the test's own; the requests)
REQUESTS: dict[str, tuple[str | None, list[dict[str, Any]]]] = {
    "one key twice": (None, [_ok("a"), _ok("b"), _ok("a")]),
    "an item over 400 KB": (None, [_ok("a"), BIG]),
    # names and values: 2 + 1 + 1 + 409,596 bytes, then 2 + 1 + 4 + 409,594
    "an item of exactly 400 KB": (None, [_put({"pk": {"S": "b"}, "b": {"S": "x" * 409_596}})]),
    "an item a byte over 400 KB": (None, [_put({"pk": {"S": "b"}, "blob": {"S": "x" * 409_594}})]),
    "a missing table": ("no-such-table", [_ok("a")]),
    "a key of the wrong type": (None, [_ok("a"), TYPED]),
    "a binary key": (None, [_put({"pk": {"B": b"\x00"}})]),
    "an empty string key": (None, [_ok("")]),
    "no key": (None, [_put({"v": {"S": "x"}})]),
    "26 items": (None, [_ok(f"k{i}") for i in range(26)]),
    "25 items": (None, [_ok(f"k{i}") for i in range(25)]),
    "no items": (None, []),
    "39 digits": (None, [_ok("a", n={"N": "1" * 39})]),
    "39 digits, 38 significant": (None, [_ok("a", n={"N": "1" * 38 + "0"})]),
    "a number too large": (None, [_ok("a", n={"N": "1E+126"})]),
    "a number too small": (None, [_ok("a", n={"N": "1E-131"})]),
    "not a number": (None, [_ok("a", n={"N": "NaN"})]),
    "numbers as written": (None, [_ok("a", n={"N": "+1.e5"}, m={"N": ".5"}, z={"N": "0E+400"})]),
    "an empty set": (None, [_ok("a", s={"SS": []})]),
    "an empty set, deep": (None, [_ok("a", m={"M": {"l": {"L": [{"NS": []}]}}})]),
    "an empty binary set": (None, [_ok("a", s={"BS": []})]),
    "a set member twice": (None, [_ok("a", s={"SS": ["x", "y", "x"]})]),
    "a number set member twice": (None, [_ok("a", s={"NS": ["1", "1.0"]})]),
    "a binary set member twice": (None, [_ok("a", s={"BS": [b"x", b"x"]})]),
    "NULL false": (None, [_ok("a", n={"NULL": False})]),
    "two types in one value": (None, [_ok("a", n={"S": "x", "N": "1"})]),
    "an empty string that is no key": (None, [_ok("a", s={"S": ""}, b={"B": b""})]),
    # which refusal wins when a request has several, as DynamoDB Local checks them
    "twice, then a key of the wrong type": (None, [_ok("a"), _ok("a"), TYPED]),
    "a key of the wrong type, then twice": (None, [TYPED, _ok("a"), _ok("a")]),
    "twice, then over 400 KB": (None, [_ok("a"), _ok("a"), BIG]),
    "over 400 KB, then a bad number": (None, [BIG, _ok("a", n={"N": "1" * 39})]),
    "a bad number, then over 400 KB": (None, [_ok("a", n={"N": "1" * 39}), BIG]),
    "over 400 KB, in 26 items": (None, [BIG, *(_ok(f"k{i}") for i in range(25))]),
    "26 items, to a missing table": ("no-such-table", [_ok(f"k{i}") for i in range(26)]),
    "over 400 KB, to a missing table": ("no-such-table", [BIG]),
    "no items, to a missing table": ("no-such-table", []),
}


@pytest.fixture(scope="session")
def raw_local(endpoint: str) -> Iterator[Any]:
    """A client for DynamoDB Local that sends what it is given, unchecked and once."""
    config = Config(parameter_validation=False, retries={"total_max_attempts": 1})
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          config=config)  # fmt: skip
    yield client
    client.close()


def _answer(call: Any, **request: Any) -> tuple[str, str, int] | dict[str, Any]:
    """An answer as comparable data: (code, message, status) of a refusal, else the body
    without its metadata (request ids and the like)."""
    try:
        body = call(**request)
    except ClientError as e:
        error = e.response["Error"]
        return error["Code"], error["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return {k: v for k, v in body.items() if k != "ResponseMetadata"}


def _on_the_wire(value: Any) -> Any:
    """A request as boto3 sends it (binary in base64), which is what the fake is given."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _on_the_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_on_the_wire(v) for v in value]
    return value


@pytest.mark.parametrize("case", REQUESTS)
def test_the_fake_answers_as_dynamodb_local_does(raw_local: Any, table: str, case: str) -> None:
    to, requests = REQUESTS[case]
    to = to or table
    local = _answer(raw_local.batch_write_item, RequestItems={to: requests})
    fake = _answer(FakeDynamo(table=table).batch_write_item,
                   RequestItems={to: _on_the_wire(requests)})  # fmt: skip
    assert fake == local


def test_the_fake_describes_a_missing_table_as_dynamodb_local_does(raw_local: Any) -> None:
    local = _answer(raw_local.describe_table, TableName="no-such-table")
    assert _answer(FakeDynamo().describe_table, TableName="no-such-table") == local
