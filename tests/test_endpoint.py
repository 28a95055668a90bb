"""The endpoint gate: one strict parse, the URL botocore is given rebuilt from it, and the
known URL-parser confusions refused rather than judged."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from conftest import rimport
from urllib3.util import parse_url

from resumable_import import endpoint
from resumable_import.errors import UsageError
from resumable_import.ledger import Ledger
from resumable_import.options import Recorded, WriteSettings

LOOPBACK = [
    ("http://localhost:8000", "http://localhost:8000"),
    ("http://LocalHost:8000/", "http://localhost:8000/"),
    ("http://127.0.0.1:8140", "http://127.0.0.1:8140"),
    ("http://127.5.6.7", "http://127.5.6.7"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("https://localhost:8443/ddb", "https://localhost:8443/ddb"),
]
REMOTE = [
    "https://dynamodb.eu-west-1.amazonaws.com",
    "http://192.0.2.2:8141",
    "http://0.0.0.0:8000",  # reaches this machine on Linux, but is not a loopback address
    "http://localhost.example.com:8000",  # lookalikes
    "http://127.0.0.1.nip.io:8000",
    "http://localhost-1:8000",
    "http://[2001:db8::1]:8000",
]
REFUSED = [
    ("http://192.0.2.2:8141\\@127.0.0.1:8140", "user name or password"),
    ("http://192.0.2.2:8141\\.127.0.0.1:8140", "backslash"),
    ("http://user:secret@127.0.0.1:8140", "user name or password"),
    ("http://127.0.0.1:8140@192.0.2.2", "user name or password"),
    ("http://a@b@127.0.0.1:8140", "user name or password"),
    ("http://[fe80::1%25eth0]:8000", "percent"),
    ("http://%6c%6fcalhost:8000", "percent"),
    ("http://[::ffff:127.0.0.1]:8000", "IPv4 address written as IPv6"),
    ("http://2130706433:8000", "dotted decimal"),
    ("http://0177.0.0.1:8000", "dotted decimal"),
    ("http://0x7f.0.0.1:8000", "dotted decimal"),
    ("http://0x7f000001:8000", "dotted decimal"),
    ("http://127.1:8000", "dotted decimal"),
    ("http://localhost.:8000", "host must be"),
    ("http://127.0.0.1.:8000", "host must be"),
    ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:8000", "host must be"),
    ("http://127.0.0.1:8000 ", "white space"),
    ("http://127.0.0.1 :8000", "white space"),
    ("http://127.0.0.1:8000\n", "white space"),
    ("http://127.0.0.1\t:8000", "white space"),
    ("http://127.0.0.1\x00:8000", "control character"),
    ("http://127.0.0.1:8000?x=1", "query"),
    ("http://127.0.0.1:8000#frag", "query or a fragment"),
    ("ftp://127.0.0.1:8000", "http:// or https://"),
    ("http:/127.0.0.1:8000", "start with http://"),
    ("http:///127.0.0.1:8000", "host must be"),
    ("http://127.0.0.1:99999", "out of range"),
    ("http://127.0.0.1:0", "out of range"),
]


@pytest.mark.parametrize(("text", "url"), LOOPBACK)
def test_loopback_endpoints_pass_as_the_url_botocore_is_given(text: str, url: str) -> None:
    parsed = endpoint.parse(text)
    assert (parsed.url, parsed.loopback) == (url, True)
    endpoint.check(parsed, allow_remote=False)
    _same_as_the_clients(parsed)


@pytest.mark.parametrize("text", REMOTE)
def test_other_hosts_need_allow_remote(text: str) -> None:
    parsed = endpoint.parse(text)
    assert not parsed.loopback
    with pytest.raises(UsageError, match="only local endpoints"):
        endpoint.check(parsed, allow_remote=False)
    endpoint.check(parsed, allow_remote=True)
    _same_as_the_clients(parsed)


@pytest.mark.parametrize(("text", "why"), REFUSED)
def test_what_parsers_read_two_ways_is_refused_even_with_allow_remote(text: str, why: str) -> None:
    with pytest.raises(UsageError) as refused:
        endpoint.parse(text)
    assert why in refused.value.message
    assert "secret" not in refused.value.message
    assert "\n" not in refused.value.message and "\x00" not in refused.value.message


def _same_as_the_clients(parsed: endpoint.Endpoint) -> None:
    """botocore keeps the URL as given, and urllib3 (which it connects with) finds the
    very host the gate judged."""
    client = boto3.client(
        "dynamodb", endpoint_url=parsed.url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="y",
    )  # fmt: skip
    assert client.meta.endpoint_url == parsed.url
    assert (parse_url(parsed.url).host or "").strip("[]") == parsed.host


def test_the_backslash_trick_is_refused_before_anything_is_read_or_sent(tmp_path: Path) -> None:
    dump = tmp_path / "d.json"
    dump.write_text('[{"pk": "a"}]', encoding="utf-8")
    ledger = tmp_path / "l.sqlite"
    out = rimport("start", dump, "--table", "t", "--ledger", ledger,
                  "--endpoint", "http://192.0.2.2:8141\\@127.0.0.1:8140")  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == (
        "error: 'http://***@127.0.0.1:8140' is not an endpoint URL rimport "
        "accepts: it holds a user name or password (credentials come from the AWS chain)"
    )
    assert out.stderr.splitlines()[1].startswith("hint: give it as http://HOST[:PORT][/PATH]")
    assert not ledger.exists()


def test_a_password_in_the_endpoint_is_refused_and_never_printed(tmp_path: Path) -> None:
    dump = tmp_path / "d.json"
    dump.write_text('[{"pk": "a"}]', encoding="utf-8")
    out = rimport("start", dump, "--table", "t", "--ledger", tmp_path / "l.sqlite",
                  "--endpoint", "http://user:secret@127.0.0.1:8140")  # fmt: skip
    assert out.returncode == 2
    assert "secret" not in out.stderr + out.stdout
    assert "user name or password" in out.stderr


def test_status_masks_a_password_an_older_rimport_recorded(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    with Ledger(ledger) as book:
        run = book.create_run(
            file="/d.json", file_size=1, file_hash="sha256:x", table="t",
            endpoint="http://user:secret@127.0.0.1:8140", region="us-east-1", format="auto",
            shape="array", options=Recorded(WriteSettings(concurrency=1)),
        )  # fmt: skip
    for args in (["status", run.id], ["status", run.id, "--json"], ["status", "--json"]):
        out = rimport(*args, "--ledger", ledger)
        assert out.returncode == 0, out.stderr
        assert "secret" not in out.stdout + out.stderr
        assert "***@127.0.0.1:8140" in out.stdout
    assert json.loads(rimport("status", run.id, "--json", "--ledger", ledger).stdout)[
        "endpoint"
    ] == ("http://***@127.0.0.1:8140")
