"""Real imports through a misbehaving network: the fault proxy (tests/faultproxy.py) in
front of DynamoDB Local, one fault at a time. Each time the table must equal the file item
by item, and the retries (lines of rimport.log) stay within what the fault can explain."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import make_dump
import pytest
import trustme
from conftest import RIMPORT, assert_table_equals, dump_items, rimport, wait_for_checkpoint
from faultproxy import FaultProxy, Faults

from resumable_import.ledger import Ledger

ITEMS = 2_000  # 80 requests of 25 items, about 1 KB each


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dump.write(tmp_path_factory.mktemp("network") / "dump.jsonl", ITEMS, "jsonl")


@pytest.fixture(scope="module")
def expected(dump: Path) -> list[dict[str, Any]]:
    return dump_items(dump)


def retries(ledger: Path) -> list[str]:
    log = ledger.with_name("rimport.log")
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [line for line in lines if "retry after" in line]


def start(dump: Path, table: str, url: str, ledger: Path) -> Any:
    return rimport("start", dump, "--table", table, "--endpoint", url, "--ledger", ledger)


# mode: (faults, what the proxy must have done at least once, retries allowed)
MODES = {
    "http-1.0": (Faults(http10=True), "closed", 0),
    "close-after-every-answer": (Faults(close_every=1), "closed", 0),
    "close-after-every-3": (Faults(close_every=3), "closed", 0),
    "chunked-with-extensions-and-trailers": (Faults(chunked=True), "chunked", 0),
    "100-continue-first": (Faults(continue_first=True), "continues", 0),
    "one-in-10-delayed": (Faults(delay_every=10, delay=0.5), "delayed", 0),
    "one-in-10-trickled": (Faults(trickle_every=10), "trickled", 0),
    "reset-mid-body-one-in-20": (Faults(reset_every=20), "reset", 4),
    "502-once": (Faults(error=502, error_once=True), "refused 502", 1),
}


@pytest.mark.parametrize("mode", MODES)
def test_an_import_through_a_faulty_proxy_lands_item_for_item(
    mode: str,
    dump: Path,
    expected: list[dict[str, Any]],
    endpoint: str,
    ddb: Any,
    table: str,
    ledger: Path,
) -> None:
    faults, done, allowed = MODES[mode]
    with FaultProxy(endpoint, faults) as proxy:
        out = start(dump, table, proxy.url, ledger)
    assert out.returncode == 0, out.stderr
    assert proxy.stats[done] >= 1, f"the proxy never did it: {proxy.stats}"
    assert proxy.stats["requests"] >= ITEMS // 25
    assert_table_equals(ddb, table, expected)
    assert len(retries(ledger)) <= allowed, retries(ledger)
    if mode.startswith("reset"):  # each reset costs one retry, and nothing else does
        assert len(retries(ledger)) == proxy.stats["reset"]
        assert all("ConnectionClosedError" in line for line in retries(ledger))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_an_import_over_tls_with_the_ca_in_aws_ca_bundle(
    dump: Path,
    expected: list[dict[str, Any]],
    endpoint: str,
    ddb: Any,
    table: str,
    ledger: Path,
    tmp_path: Path,
    ca: trustme.CA,
    tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    with FaultProxy(endpoint, Faults(close_every=3), tls=tls) as proxy:
        out = start(dump, table, proxy.url, ledger)
    assert out.returncode == 0, out.stderr
    assert proxy.url.startswith("https://") and proxy.stats["closed"] >= 1
    assert_table_equals(ddb, table, expected)
    assert retries(ledger) == []


def test_an_endpoint_whose_certificate_is_not_trusted_is_a_clear_error_at_once(
    dump: Path, endpoint: str, table: str, ledger: Path, tls: ssl.SSLContext
) -> None:
    started = time.monotonic()
    with FaultProxy(endpoint, tls=tls) as proxy:
        out = start(dump, table, proxy.url, ledger)
    assert out.returncode != 0
    assert "certificate verify failed" in out.stderr.lower(), out.stderr
    assert (
        "hint: if a proxy or a private CA signs the endpoint's certificate, point"
        " AWS_CA_BUNDLE" in out.stderr
    ), out.stderr
    assert retries(ledger) == []
    assert time.monotonic() - started < 20


def test_a_proxy_refusing_large_requests_with_413_gets_them_in_halves(
    dump: Path,
    expected: list[dict[str, Any]],
    endpoint: str,
    ddb: Any,
    table: str,
    ledger: Path,
) -> None:
    with FaultProxy(endpoint, Faults(error=413, error_above=20_000)) as proxy:
        out = start(dump, table, proxy.url, ledger)
    assert out.returncode == 0, out.stderr
    assert proxy.stats["refused 413"] >= 1
    assert_table_equals(ddb, table, expected)


def test_an_outage_mid_import_is_ridden_out_and_said(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    """The endpoint goes away for a few seconds in the middle of an import (a restart, a
    network blip): rimport says it is waiting, carries on when it is back, and finishes."""
    big = make_dump.write(tmp_path / "d.jsonl", 6_000, "jsonl")
    with FaultProxy(endpoint) as proxy:
        proc = subprocess.Popen(
            [RIMPORT, "start", str(big), "--table", table, "--endpoint", proxy.url,
             "--ledger", str(ledger), "--max-outage", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        )  # fmt: skip
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        with Ledger(ledger) as book:
            wait_for_checkpoint(proc, book, run_id, 500)
        proxy.outage(4.0)
        _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert f"run {run_id}: waiting for the endpoint since " in err
    assert f"run {run_id}: the endpoint answers again" in err
    assert_table_equals(ddb, table, dump_items(big))
