"""`verify`: the table read back by key and compared with the dump, exactly."""

from __future__ import annotations

import base64
import gzip
import json
import os
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import RIMPORT, rimport
from hypothesis import given
from hypothesis import strategies as st

from resumable_import import ImportOptions, VerifyOptions, import_file, run_status, verify_run
from resumable_import.compare import differing, same

# -- the comparison -------------------------------------------------------------------------


def test_numbers_compare_by_value() -> None:
    assert same({"N": "1.5"}, {"N": "1.50"})
    assert same({"N": "1"}, {"N": "1E0"})
    assert same({"N": "12345678901234567890123456789012345678"},
                {"N": "12345678901234567890123456789012345678.0"})  # fmt: skip
    assert not same({"N": "12345678901234567890123456789012345678"},
                    {"N": "12345678901234567890123456789012345679"})  # fmt: skip
    assert not same({"N": "1"}, {"S": "1"})


def test_sets_are_unordered_and_binary_is_bytes() -> None:
    assert same({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert same({"NS": ["1.0", "2"]}, {"NS": ["2.00", "1"]})
    assert not same({"NS": ["1", "2"]}, {"NS": ["1", "3"]})
    raw = b"\x00\xffab"
    assert same({"B": base64.b64encode(raw).decode()}, {"B": raw})
    assert same({"BS": [base64.b64encode(raw).decode(), "YQ=="]}, {"BS": [b"a", raw]})
    assert not same({"B": "YQ=="}, {"B": b"b"})


def test_maps_lists_and_empty_strings_as_they_are() -> None:
    a = {"M": {"x": {"L": [{"N": "1.50"}, {"S": ""}, {"NULL": True}]}, "y": {"BOOL": True}}}
    b = {"M": {"y": {"BOOL": True}, "x": {"L": [{"N": "1.5"}, {"S": ""}, {"NULL": True}]}}}
    assert same(a, b)
    assert not same({"L": [{"N": "1"}, {"N": "2"}]}, {"L": [{"N": "2"}, {"N": "1"}]})
    assert not same({"S": ""}, {"NULL": True})
    assert not same({"BOOL": True}, {"BOOL": False})
    assert not same({"M": {"x": {"S": "a"}}}, {"M": {"x": {"S": "a"}, "y": {"S": "b"}}})


def test_differing_names_the_attributes() -> None:
    want = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "s": {"S": "x"}, "gone": {"S": "y"}}
    got = {"pk": {"S": "a"}, "n": {"N": "1.50"}, "s": {"S": "z"}, "new": {"S": "w"}}
    assert differing(want, got) == ["gone", "new", "s"]
    assert differing(want, want) == []


numbers = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: d.is_finite()
)


@given(numbers, st.integers(0, 5))
def test_a_number_with_trailing_zeros_is_the_same(number: Decimal, zeros: int) -> None:
    text = format(number, "f")
    padded = text + ("" if "." in text else ".") + "0" * zeros if zeros else text
    assert same({"N": str(number)}, {"N": padded})


@given(st.lists(st.text(), unique=True), st.randoms())
def test_a_string_set_in_any_order_is_the_same(values: list[str], rnd: Any) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert same({"SS": values}, {"SS": shuffled})


# -- against DynamoDB Local -----------------------------------------------------------------


def write_dump(path: Path, elements: list[Any]) -> Path:
    text = "[" + ",\n".join(json.dumps(e) for e in elements) + "]"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def elements(n: int) -> list[dict[str, Any]]:
    return [{"pk": f"k{i}", "n": 1.5, "s": f"v{i}", "l": [i, "x", {"m": ""}]} for i in range(n)]


def imported(path: Path, table: str, endpoint: str, ledger: Path, client: Any = None) -> str:
    result = import_file(path, table, ImportOptions(endpoint=endpoint), ledger=ledger,
                         client=client)  # fmt: skip
    return result.run_id


def test_verify_finds_missing_and_different_items_but_not_a_number_written_anew(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", elements(250))
    run_id = imported(dump, table, endpoint, ledger)
    same_table = verify_run(run_id, ledger=ledger)
    assert (same_table.items, same_table.identical, same_table.missing) == (250, 250, 0)
    # 250 small items: a unit each by key, the whole table in a few by a scan
    assert same_table.plan == {"method": "scan", "items": 250, "read_units_by_key": 250.0,
                               "read_units_by_scan": 7.0, "why": "fewer read units"}  # fmt: skip
    assert same_table.ok and same_table.method == "scan" and same_table.extra is None
    ok = rimport("verify", run_id, "--ledger", ledger)
    assert ok.returncode == 0, ok.stderr
    assert "verified 250 items: 250 identical, 0 missing, 0 different" in ok.stderr
    assert "reading the table by a parallel scan (fewer read units): about 7 read units" in (
        ok.stderr
    )

    for i in (3, 100, 249):
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"k{i}"}})
    ddb.update_item(TableName=table, Key={"pk": {"S": "k7"}}, UpdateExpression="SET n = :v",
                    ExpressionAttributeValues={":v": {"N": "1.50"}})  # fmt: skip
    ddb.update_item(TableName=table, Key={"pk": {"S": "k8"}}, UpdateExpression="SET s = :v",
                    ExpressionAttributeValues={":v": {"S": "changed"}})  # fmt: skip
    for method in ("get", "scan"):
        result = verify_run(run_id, VerifyOptions(method=method), ledger=ledger)
        assert (result.identical, result.missing, result.different) == (246, 3, 1)
        assert [(d.index, d.attributes) for d in result.differences] == [
            (3, None), (8, ["s"]), (100, None), (249, None)
        ]  # fmt: skip
        assert result.differences[1].key == {"pk": {"S": "k8"}}
        assert result.read_units > 0 and result.method == method

    done = rimport("verify", run_id, "--ledger", ledger)
    assert done.returncode == 3, done.stderr
    assert ("verified 250 items: 246 identical, 3 missing, 1 different, 0 dead letters "
            "expected missing") in done.stderr  # fmt: skip
    assert "item 8" in done.stderr and "s" in done.stderr and "changed" not in done.stderr
    answer = rimport("verify", run_id, "--json", "--ledger", ledger)
    assert answer.returncode == 3
    got = json.loads(answer.stdout)
    assert {k: got[k] for k in ("identical", "missing", "different", "extra",
                                "expected_missing", "method")} == {
        "identical": 246, "missing": 3, "different": 1, "extra": None,
        "expected_missing": 0, "method": "scan"}  # fmt: skip
    assert "read_units" in got and len(got["differences"]) == 4

    mended = rimport("verify", run_id, "--repair", "--ledger", ledger)
    assert mended.returncode == 0, mended.stderr
    assert "repaired: 4 items written again; checked again, 0 still not as the dump has them" in (
        mended.stderr
    )
    for i in (3, 8, 100, 249):  # the dump's own values back
        got = ddb.get_item(TableName=table, Key={"pk": {"S": f"k{i}"}}, ConsistentRead=True)
        assert got["Item"]["s"] == {"S": f"v{i}"}
    after = verify_run(run_id, ledger=ledger)
    assert (after.identical, after.missing, after.different) == (250, 0, 0)
    shown = rimport("status", run_id, "--ledger", ledger)
    assert "250 identical, 0 missing, 0 different" in shown.stdout + shown.stderr


def test_the_later_of_two_elements_with_one_key_is_expected(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    items = [*elements(30), {"pk": "k4", "s": "later"}]
    run_id = imported(write_dump(tmp_path / "d.json", items), table, endpoint, ledger)
    result = verify_run(run_id, ledger=ledger)
    assert (result.items, result.identical) == (30, 30)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k4"}, "s": {"S": "v4"}, "n": {"N": "1.5"},
                                        "l": {"L": [{"N": "4"}, {"S": "x"},
                                                    {"M": {"m": {"S": ""}}}]}})  # fmt: skip
    again = verify_run(run_id, ledger=ledger)
    assert (again.different, again.differences[0].index) == (1, 30)
    assert again.differences[0].attributes == ["l", "n", "s"]


def test_a_gzip_dump(tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path) -> None:
    run_id = imported(write_dump(tmp_path / "d.json.gz", elements(120)), table, endpoint, ledger)
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k0"}})
    result = verify_run(run_id, ledger=ledger)
    assert (result.identical, result.missing) == (119, 1)


class Poisoning:
    """The DynamoDB Local client, refusing every write request that holds a poisoned key,
    as DynamoDB refuses an item it finds invalid."""

    def __init__(self, client: Any, poison: set[str]) -> None:
        self._client, self._poison = client, poison

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        from botocore.exceptions import ClientError

        for requests in RequestItems.values():
            for r in requests:
                if r["PutRequest"]["Item"]["pk"].get("S") in self._poison:
                    raise ClientError(
                        {"Error": {"Code": "ValidationException", "Message": "poisoned"},
                         "ResponseMetadata": {"HTTPStatusCode": 400}}, "BatchWriteItem",
                    )  # fmt: skip
        return self._client.batch_write_item(RequestItems=RequestItems, **kw)


def test_dead_letters_are_expected_missing(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    items: list[Any] = elements(40)
    items[5] = {"pk": "", "s": "empty key"}  # refused by rimport before sending
    items[9] = {"no_key": 1}
    dump = write_dump(tmp_path / "d.json", items)
    run_id = imported(dump, table, endpoint, ledger, client=Poisoning(ddb, {"k20", "k21"}))
    result = verify_run(run_id, ledger=ledger)
    assert (result.items, result.identical, result.missing, result.expected_missing) == (
        36, 36, 0, 4
    )  # fmt: skip
    done = rimport("verify", run_id, "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    assert "4 dead letters expected missing" in done.stderr


def test_a_changed_file_and_a_stream_are_refused(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", elements(10))
    run_id = imported(dump, table, endpoint, ledger)
    write_dump(dump, elements(11))
    done = rimport("verify", run_id, "--ledger", ledger)
    assert done.returncode == 2
    assert "has changed since run" in done.stderr and "hint: " in done.stderr

    text = json.dumps(elements(10))
    streamed = piped(text, "start", "-", "--table", table, "--endpoint", endpoint,
                     "--ledger", ledger)  # fmt: skip
    assert streamed.returncode == 0, streamed.stderr
    stream_run = verify_runs_of(ledger)[-1]
    refused = rimport("verify", stream_run, "--ledger", ledger)
    assert refused.returncode == 2
    assert "read its dump from a stream" in refused.stderr
    assert f"rimport verify {stream_run} --from -" in refused.stderr
    again = piped(text, "verify", stream_run, "--from", "-", "--ledger", ledger)
    assert again.returncode == 0, again.stderr
    assert "verified 10 items: 10 identical" in again.stderr


def piped(text: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RIMPORT, *map(str, args)], input=text, capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())  # fmt: skip


def verify_runs_of(ledger: Path) -> list[str]:
    return [r.id for r in run_status(ledger=ledger)]


def test_a_transform_run_is_verified_through_its_transform(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    code = tmp_path / "shape.py"
    code.write_text("def fix(item):\n    return {**item, 'pk': item['pk'] + '#t', 'added': 1}\n")
    dump = write_dump(tmp_path / "d.json", elements(20))
    result = import_file(dump, table, ImportOptions(endpoint=endpoint, transform=f"{code}:fix"),
                         ledger=ledger)  # fmt: skip
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k2#t"}})
    found = verify_run(result.run_id, ledger=ledger)
    assert (found.items, found.identical, found.missing) == (20, 19, 1)
    assert found.differences[0].key == {"pk": {"S": "k2#t"}}
    code.write_text("def fix(item):\n    return item\n")
    changed = rimport("verify", result.run_id, "--ledger", ledger)
    assert changed.returncode == 2
    assert "has changed since the run used it; the items it made" in changed.stderr
    assert "hint: put the transform back as it was to verify the run" in changed.stderr


def test_a_table_deleted_since_is_one_line_and_exit_2(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = imported(write_dump(tmp_path / "d.json", elements(5)), table, endpoint, ledger)
    ddb.delete_table(TableName=table)
    done = rimport("verify", run_id, "--ledger", ledger)
    assert done.returncode == 2
    assert f"table {table!r}" in done.stderr and "no longer exists" in done.stderr
    assert "hint: import the file again with `rimport start" in done.stderr


def test_an_unfinished_run_and_from_on_a_file_are_refused(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    from resumable_import import Ledger

    dump = write_dump(tmp_path / "d.json", elements(5))
    run_id = imported(dump, table, endpoint, ledger)
    given = rimport("verify", run_id, "--from", dump, "--ledger", ledger)
    assert given.returncode == 2 and "--from is for a run started on a stream" in given.stderr
    with Ledger(ledger) as book:
        book.set_state(run_id, "interrupted")
    done = rimport("verify", run_id, "--ledger", ledger)
    assert done.returncode == 2
    assert "is interrupted at item 5" in done.stderr
    assert f"hint: finish it with `rimport resume {run_id} --ledger {ledger}`" in done.stderr


def test_a_scan_finds_the_same_and_the_extra_items(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = imported(write_dump(tmp_path / "d.json", elements(300)), table, endpoint, ledger)
    scanned = verify_run(run_id, VerifyOptions(method="scan"), ledger=ledger)
    assert (scanned.items, scanned.identical, scanned.extra) == (300, 300, None)
    assert scanned.method == "scan" and scanned.read_units > 0
    for i in (4, 150):
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"k{i}"}})
    ddb.update_item(TableName=table, Key={"pk": {"S": "k9"}}, UpdateExpression="SET n = :v",
                    ExpressionAttributeValues={":v": {"N": "1.50"}})  # fmt: skip
    ddb.update_item(TableName=table, Key={"pk": {"S": "k10"}}, UpdateExpression="REMOVE s")
    ddb.put_item(TableName=table, Item={"pk": {"S": "stranger"}})
    found = verify_run(run_id, VerifyOptions(extra=True), ledger=ledger)
    assert (found.method, found.identical, found.missing, found.different, found.extra) == (
        "scan", 297, 2, 1, 1
    )  # fmt: skip
    assert [(d.index, d.attributes) for d in found.differences] == [
        (4, None), (10, ["s"]), (150, None)
    ]  # fmt: skip
    assert found.extra_keys == [{"pk": {"S": "stranger"}}]
    done = rimport("verify", run_id, "--extra", "--json", "--ledger", ledger)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["extra"] == 1
    assert "1 item in the table that the dump does not hold, first: pk=stranger" in done.stderr
    refused = rimport("verify", run_id, "--extra", "--method", "get", "--ledger", ledger)
    assert refused.returncode == 2
    assert "--extra needs the table scanned" in refused.stderr
    assert "hint: pass --method scan with it" in refused.stderr


class Stingy:
    """The DynamoDB Local client, handing back unprocessed the later half of the keys of
    every BatchGetItem and throttling every third one, as DynamoDB may."""

    def __init__(self, client: Any) -> None:
        self._client, self.calls = client, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.calls % 3 == 0:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}, "BatchGetItem",
            )  # fmt: skip
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        half = max(1, len(keys) // 2)
        answer = self._client.batch_get_item(
            RequestItems={table: {**request, "Keys": keys[:half]}}, **kw
        )
        if keys[half:]:
            answer["UnprocessedKeys"] = {table: {**request, "Keys": keys[half:]}}
        return answer


def test_unprocessed_keys_and_throttling_are_asked_again(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = imported(write_dump(tmp_path / "d.json", elements(230)), table, endpoint, ledger)
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k229"}})
    stingy = Stingy(ddb)
    result = verify_run(run_id, VerifyOptions(method="get"), ledger=ledger, client=stingy)
    assert (result.identical, result.missing, result.different) == (229, 1, 0)
    assert stingy.calls > 3 * 2
    assert result.read_units_measured and result.read_units == 229


def test_status_shows_the_last_verification_and_forget_removes_it(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = imported(write_dump(tmp_path / "d.json", elements(10)), table, endpoint, ledger)
    never = rimport("status", run_id, "--json", "--ledger", ledger)
    assert "verified" not in json.loads(never.stdout)  # a run never verified: JSON as it was
    assert "verified" not in rimport("status", run_id, "--ledger", ledger).stdout
    assert verify_run(run_id, ledger=ledger).recorded
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k2"}})
    ddb.update_item(TableName=table, Key={"pk": {"S": "k5"}}, UpdateExpression="SET s = :v",
                    ExpressionAttributeValues={":v": {"S": "changed"}})  # fmt: skip
    assert rimport("verify", run_id, "--method", "get", "--ledger", ledger).returncode == 3

    shown = rimport("status", run_id, "--json", "--ledger", ledger)
    assert shown.returncode == 0, shown.stderr
    last = json.loads(shown.stdout)["verified"]
    assert {k: v for k, v in last.items() if k not in ("at", "read_units", "seconds")} == {
        "method": "get", "items": 10, "identical": 8, "missing": 1, "different": 1,
        "extra": None, "expected_missing": 0, "read_units_estimated": False, "sample": None,
        "repaired": None, "unrepaired": None}  # fmt: skip
    assert last["read_units"] > 0 and last["at"].endswith("+00:00")
    (listed,) = [r for r in json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
                 if r["run_id"] == run_id]  # fmt: skip
    assert listed["verified"] == last
    text = rimport("status", run_id, "--ledger", ledger)
    at = last["at"].replace("T", " ").removesuffix("+00:00")
    assert (f"verified:        {at} UTC by key: 10 items, 8 identical, 1 missing, 1 different, "
            f"0 dead letters expected missing ({last['read_units']:,.1f} read units consumed, "
            f"{last['seconds']:.1f}s)\n") in text.stdout  # fmt: skip

    scanned = rimport("verify", run_id, "--extra", "--ledger", ledger)
    assert scanned.returncode == 3, scanned.stderr
    again = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)["verified"]
    assert (again["method"], again["extra"], again["missing"]) == ("scan", 0, 1)
    assert "by a parallel scan: 10 items" in rimport("status", run_id, "--ledger", ledger).stdout

    forgotten = rimport("forget", run_id, "--ledger", ledger)
    assert forgotten.returncode == 0, forgotten.stderr
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM verifications").fetchone() == (0,)


def test_the_fast_reads_ride_out_closed_connections_and_odd_framing(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path, monkeypatch: Any
) -> None:
    """Both ways read through the import's own HTTP transport: a proxy that closes every
    kept-alive connection after its second answer and chunks every body costs retries,
    not a verdict (30 batches by key share at most 8 connections); binary values and sets
    come back as DynamoDB JSON and compare as equal. The scan is cut into 8 segments of
    pages of some 20 items, so each segment follows its LastEvaluatedKey over 10 times."""
    from faultproxy import FaultProxy, Faults

    from resumable_import import verifyscan

    monkeypatch.setattr(verifyscan, "PAGE_BYTES", 8192)
    monkeypatch.setattr(verifyscan, "MAX_SEGMENTS", 8)

    dump = tmp_path / "export.json"  # DynamoDB's export lines: binary and sets typed
    lines = [{"Item": {"pk": {"S": f"k{i}"}, "b": {"B": "AP8="}, "pad": {"S": "x" * 300},
                       "ns": {"NS": ["2.5", "1", str(i + 2)]}}} for i in range(3000)]  # fmt: skip
    dump.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with FaultProxy(endpoint, Faults(close_every=2, chunked=True)) as proxy:
        options = ImportOptions(endpoint=proxy.url, format="ddb-export")
        run_id = import_file(dump, table, options, ledger=ledger).run_id
        ddb.update_item(TableName=table, Key={"pk": {"S": "k7"}}, UpdateExpression="SET b = :b",
                        ExpressionAttributeValues={":b": {"B": b"\x00\xfe"}})  # fmt: skip
        for method in ("get", "scan"):
            asked = proxy.stats["requests"]
            result = verify_run(run_id, VerifyOptions(method=method), ledger=ledger)
            assert proxy.stats["requests"] - asked >= (30 if method == "get" else 100)
            assert (result.items, result.identical, result.different) == (3000, 2999, 1), method
            assert result.differences[0].attributes == ["b"], method
            assert result.read_units_measured, method
        assert proxy.stats["closed"] >= 5 and proxy.stats["chunked"] >= 5, proxy.stats
