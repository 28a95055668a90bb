"""The reader: every shape, exact numbers, exact byte offsets, and clear errors."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_import import detect, jsontext
from resumable_import.cli.hints import spelled
from resumable_import.detect import detect_shape
from resumable_import.errors import InputError
from resumable_import.reader import Dump, Position, Shape


def write(tmp_path: Path, text: str | bytes, name: str = "dump.json") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def values(path: Path, start: Position | None = None, fmt: str = "auto") -> list[Any]:
    return [r.value for r in Dump.open(path, fmt).items(start)]


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ('[{"pk": "a"}, {"pk": "b"}]', "array"),
        ('  \n[\n {"pk": "a"} ,\n{"pk": "b"}\n]\n', "array"),
        ('{"Items": [\n{"pk": "a"}, {"pk": "b"}], "Count": 2}', "object:Items"),
        ('{"version": 3,\n "items": [{"pk": "a"}, {"pk": "b"}]}', "object:items"),
        ('{"Records": [{"pk": "a"},\n{"pk": "b"}]}\n', "object:Records"),
        ('{\n "messages": [{"pk": "a"},\n {"pk": "b"}]\n}', "object:messages"),
        ('{"Count": 2, "Items": [{"pk": "a"}, {"pk": "b"}],\n"LastEvaluatedKey": {"pk": "b"}}',
         "object:Items"),
        ('{"pk": "a"}\n{"pk": "b"}\n', "jsonl"),
        ('{"pk": "a"}\r\n\r\n  \r\n{"pk": "b"}', "jsonl"),
        ('{"pk": "a", "list": [{"x": 1}]}\n{"pk": "b"}\n', "jsonl"),
    ],
)  # fmt: skip
def test_every_shape_yields_the_same_items(tmp_path: Path, text: str, shape: str) -> None:
    path = write(tmp_path, text)
    assert str(detect_shape(path)) == shape
    assert [v["pk"] for v in values(path)] == ["a", "b"]


def test_a_single_line_item_is_json_lines(tmp_path: Path) -> None:
    path = write(tmp_path, '{"pk": "a", "n": 1}\n')
    assert detect_shape(path) == Shape("jsonl")
    assert values(path) == [{"pk": "a", "n": 1}]


ONE_LINE = [
    ('{"Items":[{"pk":"a"},{"pk":"b"}]}', "object:Items", ["a", "b"]),
    ('{"Items": []}', "object:Items", []),
    ('{"Count":2,"Items":[{"pk":"a"},{"pk":"b"}],"ScannedCount":2}\n', "object:Items", ["a", "b"]),
    ('{"data": [{"pk": "a"}, {"pk": "b"}]}\n', "object:data", ["a", "b"]),
    ('\n\n {"records":[{"pk":"a"}]}  \n\n', "object:records", ["a"]),
    ('{"pk": "a", "children": [{"pk": "x"}]}\n', "jsonl", ["a"]),
    ('{"children": [{"pk": "x"}], "pk": "a"}', "jsonl", ["a"]),
    ('{"pk": "a", "data": {"rows": [{"pk": "x"}]}}', "jsonl", ["a"]),
    ('{"pk": "a"}', "jsonl", ["a"]),
]  # fmt: skip


@pytest.mark.parametrize("peek", ["whole line", "walked"])
@pytest.mark.parametrize(("text", "shape", "pks"), ONE_LINE)
def test_one_object_on_one_line_is_a_wrapper_exactly_when_its_items_sit_where_a_wrappers_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, shape: str, pks: list[str],
    peek: str,
) -> None:  # fmt: skip
    """The same answer whether the line fits in the peek or must be walked key by key (a
    one-line wrapper of gigabytes), where the line is never decoded whole."""
    path = write(tmp_path, text)
    if peek == "walked":
        monkeypatch.setattr(detect, "_PEEK", 8)
        monkeypatch.setattr(detect, "_loads_or_none", _never)
    dump = Dump.open(path)
    assert str(dump.shape) == shape
    assert [v["pk"] for v in values(path)] == pks
    if shape.startswith("object:"):
        key = shape.partition(":")[2]
        assert spelled(dump.note) == (
            f"dump.json is one JSON object on one line: reading the items under {key!r} "
            "(--format jsonl reads the line as one item instead)"
        )
        (whole,) = values(path, fmt="jsonl")  # the other reading, when asked for
        assert list(whole) == list(json.loads(text))
    elif "[{" in text:  # the note names the array, and --items-path reads it
        path_to = re.search(r"--items-path (\S+)", spelled(dump.note or ""))
        assert path_to, dump.note
        assert [r.value["pk"] for r in Dump.open(path, items_path=path_to[1]).items()] == ["x"]
    else:
        assert dump.note is None


def _never(line: bytes) -> Any:
    raise AssertionError("a line longer than the peek was decoded whole")


def test_a_one_line_wrapper_longer_than_the_peek_is_read_as_a_wrapper(tmp_path: Path) -> None:
    """What `jq -c` writes: one line, here 5 MB, more than detection looks at."""
    items = [{"pk": f"k{i}", "pad": "x" * 200} for i in range(23_000)]
    for key in ("Items", "data"):
        path = write(tmp_path, json.dumps({key: items}, separators=(",", ":")) + "\n")
        assert path.stat().st_size > detect._PEEK
        dump = Dump.open(path)
        assert dump.shape == Shape("object", key)
        assert sum(1 for _ in dump.items()) == len(items)


@pytest.mark.parametrize(
    "text",
    [
        '\n{"pk": "a"}\n{"pk": "b"}\n',
        '\r\n  \n\t\n{"pk": "a", "list": [{"x": 1}]}\r\n{"pk": "b"}',
        '\ufeff\n\n{"pk": "a"}\n\n{"pk": "b"}\n',
        '\ufeff{"pk": "a"}\n{"pk": "b"}\n',
    ],
)
def test_blank_lines_and_a_bom_before_json_lines_are_fine(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert detect_shape(path) == Shape("jsonl")
    assert [r.value["pk"] for r in Dump.open(path).items()] == ["a", "b"]


def test_a_one_line_wrapper_of_dynamodb_json_reads_with_its_format(tmp_path: Path) -> None:
    path = write(tmp_path, '{"Items":[{"pk":{"S":"a"}},{"pk":{"S":"b"}}],"Count":2}\n')
    dump = Dump.open(path, "ddb-json")
    assert (str(dump.shape), dump.items_as) == ("object:Items", "ddb-json")
    assert [r.value for r in dump.items()] == [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]
    with pytest.raises(InputError, match="DynamoDB's own JSON") as e:
        Dump.open(path)
    assert "--format ddb-json" in spelled(e.value.hint or "")


def test_numbers_keep_every_digit(tmp_path: Path) -> None:
    text = (
        '[{"a": 0.1, "b": 3.14159265358979323846264338327950288,'
        ' "c": 12345678901234567890123456789012345678, "d": -1e-130, "e": 1.50}]'
    )
    path = write(tmp_path, text)
    (item,) = values(path)
    assert item["a"] == Decimal("0.1") and str(item["a"]) == "0.1"
    assert str(item["b"]) == "3.14159265358979323846264338327950288"
    assert item["c"] == 12345678901234567890123456789012345678
    assert str(item["d"]) == "-1E-130"
    assert str(item["e"]) == "1.50"


def test_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + '[{"pk": "é"}]'.encode())
    assert values(path) == [{"pk": "é"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   \n ", "only white space"),
        ("42", "starts with '4'"),
        ('"text"', "starts with '\"'"),
        ('[{"pk": "a"}, {"pk": "b"', "ends in the middle of a value"),
        ('[{"pk": "a"}, {"pk": "b"}', "ends inside the items array"),
        ('[{"pk": "a"} {"pk": "b"}]', "expected ',' or ']'"),
        ('[{"pk": "a"}, {"pk": NaN}]', "NaN is not a number"),
        ('[{"pk": "a"}]  x', "after the end of the dump"),
        ('{\n"meta": 1, "list": [1, 2]}', "no array of objects"),
        ('{"pk": "a"}\n{"pk": "b', "cut short"),
        ('{"pk": "a"}\n{"pk" "b"}\n', "invalid JSON"),
    ],
)
def test_malformed_files_are_refused_with_a_position(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as e:
        values(path)
    assert str(path) in e.value.message


def test_errors_name_the_byte_offset_and_item(tmp_path: Path) -> None:
    good = '{"pk": "ünïcode"}'
    path = write(tmp_path, f"[{good}, {good}, {{bad}}]")
    with pytest.raises(InputError) as e:
        values(path)
    assert e.value.index == 2
    assert e.value.offset == len(f"[{good}, {good}, {{".encode())
    assert f"at byte {e.value.offset} in item 2" in e.value.message


def test_items_before_a_problem_are_yielded(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"pk": "a"}, {"pk": "b"}, {"pk": ')
    got = []
    with pytest.raises(InputError):
        for raw in Dump.open(path).items():
            got.append(raw.value["pk"])
    assert got == ["a", "b"]


def test_invalid_utf8_is_reported_at_its_byte(tmp_path: Path) -> None:
    path = write(tmp_path, b'[{"pk": "a"}, {"pk": "\xff"}]')
    with pytest.raises(InputError, match="not UTF-8 text at byte 22"):
        values(path)


def test_elements_that_are_not_objects_are_passed_on(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"pk": "a"}, 5, "x", null, [1]]')
    assert values(path) == [{"pk": "a"}, 5, "x", None, [1]]


# -- the fast path and its fallbacks ---------------------------------------------------------


@pytest.mark.parametrize(
    "tricky",
    [
        {"pk": "a {", "n": 1},  # an unbalanced brace in a string fools the brace count
        {"pk": "}", "m": {"x": "}}"}},
        {"pk": "c", "s": 'quote " and \\ and {', "big": 10**400},
    ],
)
def test_items_the_brace_count_or_msgspec_get_wrong_are_read_exactly(
    tmp_path: Path, tricky: dict[str, Any]
) -> None:
    items = [{"pk": f"k{i}", "m": {"l": [{"x": i}]}} for i in range(50)]
    items[20] = tricky
    path = write(tmp_path, render(items, "array", " "))
    dump = Dump.open(path)
    full = list(dump.items())
    assert [r.value for r in full] == items
    for raw in full[18:23]:  # and every offset around it is exact
        rest = list(dump.items(Position(raw.index + 1, raw.end)))
        assert [r.value for r in rest] == items[raw.index + 1 :]


def test_items_that_do_not_begin_alike_or_nest_alike_are_read_exactly(tmp_path: Path) -> None:
    """The end of an item is guessed from how the last one began; wrong guesses cost a
    decode, never an item."""
    items: list[dict[str, Any]] = [{"pk": f"k{i}", "v": i} for i in range(40)]
    items[5] = {"pk": "nest", "kids": [{"pk": "x"}, {"pk": "y", "l": [{"pk": "z"}]}]}
    items[9] = {"other": "first key", "pk": "o"}
    items += [{f"key{i}": i, "pk": f"m{i}"} for i in range(100)]  # no two alike: guessing stops
    for pad in ("", " ", "\n  "):
        path = write(tmp_path, render(items, "array", pad))
        full = list(Dump.open(path).items())
        assert [r.value for r in full] == items
        for raw in full[3:12]:
            rest = list(Dump.open(path).items(Position(raw.index + 1, raw.end)))
            assert [r.value for r in rest] == items[raw.index + 1 :]


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.dictionaries(st.sampled_from("{}[]\\\",: ab"), st.text("{}[]\\\"ab ,"),
                                       max_size=3) | st.dictionaries(st.text("{}a", max_size=3),
                                       st.lists(st.text("{}\"", max_size=3), max_size=3),
                                       max_size=2), min_size=1, max_size=8))  # fmt: skip
def test_the_fast_path_reads_what_the_standard_library_reads(
    tmp_path_factory: pytest.TempPathFactory, items: list[Any]
) -> None:
    """Strings full of braces, brackets, quotes and backslashes: the same items and ends."""
    path = tmp_path_factory.mktemp("f") / "dump.json"
    path.write_text(render(items, "array", " "), encoding="utf-8")
    fast = [(r.value, r.end) for r in Dump(path, Shape("array")).items()]
    old = jsontext.Scanner.fast
    try:
        jsontext.Scanner.fast = False  # type: ignore[assignment]
        slow = [(r.value, r.end) for r in Dump(path, Shape("array")).items()]
    finally:
        jsontext.Scanner.fast = old  # type: ignore[assignment]
    assert fast == slow and [v for v, _ in fast] == items


def test_a_lone_surrogate_escape_reads_as_before(tmp_path: Path) -> None:
    """msgspec declines it; the standard library reads it, as it did before msgspec."""
    path = write(tmp_path, '[{"pk": "a", "s": "\\ud800"}]')
    assert values(path) == [{"pk": "a", "s": "\ud800"}]
    path = write(tmp_path, '{"pk": "a", "s": "\\ud800"}\n', name="d.jsonl")
    assert values(path) == [{"pk": "a", "s": "\ud800"}]


# -- offsets and resuming ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)  # fmt: skip
items_strategy = st.lists(
    st.dictionaries(st.text(max_size=6), json_values, max_size=4), min_size=1, max_size=12
)


def encode(value: Any, pad: str) -> str:
    if isinstance(value, dict):
        inner = f",{pad}".join(f"{json.dumps(k, ensure_ascii=False)}:{pad}{encode(v, pad)}"
                               for k, v in value.items())  # fmt: skip
        return "{" + pad + inner + pad + "}"
    if isinstance(value, list):
        return "[" + f",{pad}".join(encode(v, pad) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def render(items: list[Any], shape: str, pad: str) -> str:
    body = [encode(i, pad) for i in items]
    if shape == "array":
        return "[" + pad + f",{pad}\n".join(body) + "\n]\n"
    if shape == "object":
        return '{"Count": 1,\n "Items": [' + ",\n".join(body) + '],\n "more": {"x": [1]}}'
    return "\n".join(encode(i, " ") for i in items) + "\n"


@settings(max_examples=150, deadline=None)
@given(items=items_strategy, shape=st.sampled_from(["array", "object", "jsonl"]),
       pad=st.sampled_from(["", " ", "\n  "]), chunk=st.sampled_from([1, 3, 7, 64]))  # fmt: skip
def test_offsets_resume_exactly_after_each_item(
    tmp_path_factory: pytest.TempPathFactory, items: list[Any], shape: str, pad: str, chunk: int
) -> None:
    """Reading on from any item's end offset yields exactly the rest, whatever the chunking."""
    path = tmp_path_factory.mktemp("h") / "dump.json"
    path.write_text(render(items, shape, pad), encoding="utf-8")
    old = jsontext._CHUNK
    jsontext._CHUNK = chunk
    try:
        dump = Dump(path, Shape("object", "Items") if shape == "object" else Shape(shape))
        full = list(dump.items())
        assert [r.value for r in full] == items
        assert [r.index for r in full] == list(range(len(items)))
        for raw in full:
            rest = list(dump.items(Position(raw.index + 1, raw.end)))
            assert [r.value for r in rest] == items[raw.index + 1 :]
    finally:
        jsontext._CHUNK = old


# -- compressed dumps ------------------------------------------------------------------------

COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
@pytest.mark.parametrize("shape", ["array", "jsonl"])
def test_compressed_dumps_are_read_whatever_their_name(
    tmp_path: Path, codec: str, shape: str
) -> None:
    items = [{"pk": f"k{i}", "é": i} for i in range(300)]
    text = render(items, shape, "\n ")
    path = write(tmp_path, COMPRESSORS[codec](text.encode()), name="dump.json")  # no .gz
    dump = Dump.open(path)
    assert dump.shape == Shape(shape)
    full = list(dump.items())
    assert [r.value for r in full] == items
    assert dump.file_position(full[-1].end) <= path.stat().st_size  # progress in file bytes
    rest = list(dump.items(Position(200, full[199].end)))
    assert [r.value for r in rest] == items[200:]


def test_a_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    data = gzip.compress(render([{"pk": f"k{i}"} for i in range(5000)], "array", " ").encode())
    path = write(tmp_path, data[: len(data) // 2], name="dump.json.gz")
    with pytest.raises(InputError, match=r"cannot read the gzip stream after byte \d+") as e:
        values(path)
    assert "gzip -t" in (e.value.hint or "")


def test_a_dump_of_dynamodb_json_must_be_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"pk": {"S": "a"}, "n": {"N": "1"}}]')
    with pytest.raises(InputError, match="both as plain JSON and as DynamoDB's own JSON") as e:
        Dump.open(path)
    assert "--format ddb-json" in spelled(e.value.hint or "")
    assert Dump.open(path, "ddb-json").items_as == "ddb-json"
    assert values(path, fmt="json") == [{"pk": {"S": "a"}, "n": {"N": "1"}}]


def test_export_lines_must_be_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, '{"Item": {"pk": {"S": "a"}}}\n{"Item": {"pk": {"S": "b"}}}\n')
    with pytest.raises(InputError, match="DynamoDB's own JSON") as e:
        Dump.open(path)
    assert "--format ddb-export" in spelled(e.value.hint or "")
    dump = Dump.open(path, "ddb-export")
    assert (dump.shape, dump.items_as) == (Shape("jsonl"), "ddb-export")


@pytest.mark.parametrize(
    ("text", "fmt", "message", "hint"),
    [
        ('[{"pk": "a"}]', "jsonl", "a JSON array, not JSON Lines", "--format json"),
        ('[{"pk": {"S": "a"}}]', "ddb-export", "a JSON array, not JSON", "--format ddb-json"),
        ('{\n  "Items": [\n    {"pk": "a"}\n  ]\n}\n', "jsonl",
         "one JSON object over several lines, not JSON Lines", "--format json"),
        ('{"pk": "a"}\n{"pk": "b"}\n', "json", "one object per line", "--format jsonl"),
        ('[{"pk": "a", "n": 1}]', "ddb-json", "first item is not DynamoDB JSON", "--format json"),
        ('{"pk": {"S": "a"}}\n', "ddb-export", "first item is not an export line",
         "--format ddb-json"),
    ],
)  # fmt: skip
def test_a_wrong_format_is_named_before_anything_is_read(
    tmp_path: Path, text: str, fmt: str, message: str, hint: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as e:
        Dump.open(path, fmt)
    assert str(path) in e.value.message and hint in spelled(e.value.hint or "")


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('[{"pk": "a"}]', "jsonl"),
        ('[{"pk": {"S": "a"}}]', "ddb-export"),
        ('{"pk": "a"}\n{"pk": "b"}\n', "json"),
        ('{"pk": {"S": "a"}}\n{"pk": {"S": "b"}}\n', "json"),
        ('{"Item": {"pk": {"S": "a"}}}\n', "json"),
        ('[{"pk": "a", "n": 1}]', "ddb-json"),
        ('{"pk": "a"}\n', "ddb-json"),
        ('{"Item": {"pk": {"S": "a"}}}\n', "ddb-json"),
        ('{"pk": {"S": "a"}}\n', "ddb-export"),
        ('{"Items":[{"pk":{"S":"a"}}]}', "auto"),
        ('{"pk":"a"}', "json"),
        ('{"data": {"records": [{"pk": "a"}]}}', "json"),
        ('{\n"meta": {"v": 1}, "data": {"records": [{"pk": "a"}]}}', "auto"),
    ],
)  # fmt: skip
def test_every_refusal_names_an_option_that_reads_the_file(
    tmp_path: Path, text: str, fmt: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        Dump.open(path, fmt)
    option = re.search(r"--(format|items-path) ([\w.-]+)", spelled(e.value.hint or ""))
    assert option, e.value.hint
    works = (option[2], None) if option[1] == "format" else (fmt, option[2])
    assert [r.value for r in Dump.open(path, *works).items()]


NESTED = (
    '{"meta": {"items": [{"not": "these"}]},\n "data": {"count": 3, "records": [\n'
    '{"pk": "a"}, {"pk": "b"},\n {"pk": "c"}], "more": [{"x": 1}]}, "tail": [1]}\n'
)


def test_items_path_names_the_array_in_a_nested_wrapper(tmp_path: Path) -> None:
    path = write(tmp_path, NESTED)
    dump = Dump.open(path, items_path="data.records")
    full = list(dump.items())
    assert [r.value["pk"] for r in full] == ["a", "b", "c"]
    assert str(dump.shape) == "path:data.records"
    for raw in full:  # resuming after any item, through the closing braces
        rest = list(
            Dump(path, Shape.parse(str(dump.shape))).items(Position(raw.index + 1, raw.end))
        )
        assert [r.value["pk"] for r in rest] == ["a", "b", "c"][raw.index + 1 :]


def test_a_missing_items_path_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, NESTED)
    with pytest.raises(InputError, match="no key 'rows' in data at byte"):
        Dump.open(path, items_path="data.rows")
    with pytest.raises(InputError, match="does not go with format='jsonl'") as e:
        Dump.open(path, "jsonl", items_path="data")
    assert spelled(e.value.message) == "--items-path does not go with --format jsonl"
