"""The endpoint's name looked up again in the background, and connections spread over its
addresses: the unit against a scripted lookup, then the transport against two proxies in
front of DynamoDB Local that one name points at, then only the second."""

from __future__ import annotations

import socket
import time
from typing import Any

import boto3
import orjson
from faultproxy import FaultProxy

from resumable_import import resolver
from resumable_import.resolver import Resolver
from resumable_import.transport import HttpTransport


def address(port: int, host: str = "127.0.0.1") -> Any:
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))


class Script:
    """A lookup that answers what it is told, counting the calls."""

    def __init__(self, *answer: Any) -> None:
        self.answer: list[Any] | Exception = list(answer)
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[Any]:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return list(self.answer)


def settled(r: Resolver) -> list[Any]:
    """The addresses once a lookup in the background has answered."""
    for _ in range(200):
        r.addresses()
        if not r._asking:
            return r.addresses()
        time.sleep(0.01)
    raise AssertionError("the lookup never answered")


def test_connections_take_the_addresses_in_turn_and_a_refusing_one_last() -> None:
    a, b, c = address(1), address(2), address(3)
    r = Resolver("ddb.example", 443, Script(a, b, c))
    firsts = [r.addresses()[0] for _ in range(6)]
    assert firsts == [a, b, c, a, b, c]
    r.refused(b)
    assert [r.addresses() for _ in range(2)] == [[a, c, b], [c, a, b]]


def test_a_name_is_looked_up_again_in_the_background_and_a_literal_never(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(resolver, "REFRESH", 0.0)
    script = Script(address(1))
    r = Resolver("ddb.example", 443, script)
    assert r.addresses() == [address(1)] and script.calls == 1
    script.answer = [address(2)]
    assert settled(r) == [address(2)] and script.calls >= 2
    script.answer = OSError("name or service not known")  # the known addresses stand
    assert settled(r) == [address(2)]
    r.failed()  # every address failed: looked up at once, and its error is the caller's
    try:
        r.addresses()
        raise AssertionError("the failed lookup was not raised")
    except OSError as e:
        assert "not known" in str(e)

    literal = Script(address(9))
    r = Resolver("127.0.0.1", 8000, literal)
    for _ in range(5):
        r.addresses()
    assert literal.calls == 1 and r.literal and Resolver("[::1]", 1, literal).literal


def test_the_transport_spreads_over_a_names_addresses_and_follows_them(
    endpoint: str, ddb: Any, table: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(resolver, "REFRESH", 0.3)
    monkeypatch.setattr(resolver, "MAX_AGE", 0.3)
    with FaultProxy(endpoint) as one, FaultProxy(endpoint) as two:
        script = Script(address(one.port), address(two.port))
        client = boto3.client("dynamodb", endpoint_url=f"http://ddb.test:{one.port}",
                              region_name="us-east-1")  # fmt: skip
        http = HttpTransport(client, client._get_credentials())
        monkeypatch.setattr(http._resolver, "_lookup", script)
        written = 0

        def write(rounds: int) -> None:
            nonlocal written
            for _ in range(rounds):
                tokens = set()
                for _ in range(4):  # four in flight: four connections
                    items = [orjson.dumps({"pk": {"S": f"k{written + i}"}}) for i in range(25)]
                    tokens.add(http.start(table, items))
                    written += 25
                while tokens:
                    for token, outcome in http.wait(5):
                        assert isinstance(outcome, dict), outcome
                        tokens.discard(token)

        write(3)
        assert one.stats["connections"] >= 2 and two.stats["connections"] >= 2
        script.answer = [address(two.port)]  # the name now points at the second only
        for _ in range(2):  # retired: new connections ask again (in the background), then
            time.sleep(0.5)  # the next new ones take its answer
            write(1)
        settled_at = one.stats["requests"]
        write(3)
        http.close()
    assert one.stats["requests"] == settled_at  # nothing more went to the old address
    assert script.calls >= 2
    count = ddb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"]
    assert count == written
