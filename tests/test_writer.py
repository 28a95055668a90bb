"""The writer against a fake with injected faults: what is retried, isolated or fatal.

Anything about time runs on a simulated clock (`FakeClock`, `SimTransport`): the fake's
capacity, outages and hot keys, the writer's backoff, pace and budgets all read it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest
from botocore.exceptions import SSLError
from fakes import FakeClock, FakeDynamo, SimTransport, client_error

from resumable_import.attributes import to_item
from resumable_import.errors import ServiceError
from resumable_import.items import item_size, write_units
from resumable_import.keys import Key, key_of
from resumable_import.transport import SyncTransport
from resumable_import.writer import Job, RetryPolicy, Writer

FAST = RetryPolicy(max_attempts=4, base_delay=0.0001, max_delay=0.001)


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    """The backoff's jitter, the same on every run."""
    state = random.getstate()
    random.seed(7)
    yield
    random.setstate(state)


class Sim:
    """A fake table, its transport and a writer, all on one simulated clock."""

    def __init__(self, latency: float = 0.005) -> None:
        self.clock = FakeClock()
        self.fake = FakeDynamo(clock=self.clock)
        self.transport = SimTransport(self.fake, self.clock, latency)
        self.outages: list[tuple[float | None, str]] = []

    def writer(self, policy: RetryPolicy | None = None, **kw: object) -> Writer:
        return Writer(
            self.transport, self.fake.table, self.fake.key_names, policy or RetryPolicy(),
            clock=self.clock, sleep=self.clock.sleep,
            on_outage=lambda since, cause: self.outages.append((since, cause)), **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    def run(self, w: Writer, batches: list[list[bytes]], window: int = 32) -> list[Job]:
        """Hand the batches over as run.py does, at most `window` unfinished at once."""
        jobs: list[Job] = []
        for batch in batches:
            while sum(not j.done for j in jobs[-window:]) >= window:
                w.poll(block=True)
            jobs.append(w.submit(*keyed(batch)))
            w.poll(block=False)
        while not all(j.done for j in jobs):
            w.poll(block=True)
        return jobs


def keyed(items: list[bytes]) -> tuple[list[bytes], list[Key | None]]:
    """Items with their keys, as a batch hands them to the writer."""
    return items, [key_of(orjson.loads(i), ("pk",)) for i in items]


def encoded(*values: dict) -> list[bytes]:
    """Items as the writer takes them: attribute maps serialized, as they go on the wire."""
    return [orjson.dumps(to_item(v)) for v in values]


def items(n: int, prefix: str = "k", size: int = 0) -> list[bytes]:
    return encoded(*({"pk": f"{prefix}{i}", "v": i, "pad": "x" * size} for i in range(n)))


def batches(n: int, size: int = 0) -> list[list[bytes]]:
    every = items(n, size=size)
    return [every[i : i + 25] for i in range(0, n, 25)]


def writer(fake: FakeDynamo, policy: RetryPolicy = FAST, **kw: object) -> Writer:
    return Writer(SyncTransport(fake), fake.table, fake.key_names, policy, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "faults",
    [
        ["ProvisionedThroughputExceededException"],
        ["ThrottlingException", "RequestLimitExceeded"],
        ["InternalServerError", client_error("SomethingNew", status=503)],
        ["connection", "connection"],
    ],
)
def test_transient_faults_are_retried_until_written(faults: list) -> None:
    fake = FakeDynamo()
    fake.fail_next = list(faults)
    assert writer(fake).write(*keyed(items(25))) == []
    assert len(fake.items) == 25
    assert fake.calls == len(faults) + 1


def test_unprocessed_items_are_sent_again_until_written() -> None:
    fake = FakeDynamo()
    fake.unprocessed = {"k3": 2, "k7": 1}
    assert writer(fake).write(*keyed(items(25))) == []
    assert len(fake.items) == 25
    assert fake.calls == 3


def test_a_poisoned_item_is_dead_lettered_alone_and_its_batch_mates_written() -> None:
    fake = FakeDynamo()
    fake.poison = {"k13"}
    failures = writer(fake).write(*keyed(items(25)))
    assert [(f.position, f.code, f.retryable) for f in failures] == [
        (13, "ValidationException", False)
    ]
    assert sorted(k[0] for k in fake.items) == sorted(f"k{i}" for i in range(25) if i != 13)


def test_two_poisoned_items_are_both_isolated() -> None:
    fake = FakeDynamo()
    fake.poison = {"k0", "k24"}
    failures = writer(fake).write(*keyed(items(25)))
    assert sorted(f.position for f in failures) == [0, 24]
    assert len(fake.items) == 23


def test_an_item_handed_back_past_its_budget_is_a_retryable_dead_letter() -> None:
    """A hot key: every other item is written, this one keeps coming back. Its budget is
    both attempts and seconds; past it, its job completes with it dead-lettered."""
    sim = Sim()
    sim.fake.hot = {"k5": sim.clock() + 10_000}
    w = sim.writer(RetryPolicy(max_attempts=3, item_timeout=20.0))
    started = sim.clock()
    jobs = sim.run(w, batches(200))
    failures = [f for j in jobs for f in j.failures]
    assert [(f.position, f.code, f.retryable) for f in failures] == [(5, "Unprocessed", True)]
    assert failures[0].attempts >= 3 and "hot key" in failures[0].message
    assert len(sim.fake.items) == 199
    assert 20.0 <= sim.clock() - started < 20.0 + 2 * 20.0  # its budget, plus one last backoff


def test_an_item_handed_back_for_less_than_its_budget_is_written() -> None:
    sim = Sim()
    sim.fake.hot = {"k5": sim.clock() + 10.0}  # a hot key for ten seconds
    w = sim.writer(RetryPolicy(max_attempts=3, item_timeout=20.0))
    jobs = sim.run(w, batches(200))
    assert not any(j.failures for j in jobs)
    assert len(sim.fake.items) == 200


def test_a_request_failing_alone_while_others_are_written_gives_up_on_its_budget() -> None:
    """A proxy that answers 502 to one request's body, every time, while the rest goes in:
    that request's items become retryable dead letters; the run is not stopped for it."""
    sim = Sim()

    def bad_gateway(items: list) -> None:
        if any(i["pk"]["S"] == "k30" for i in items):
            raise client_error("HTTP502", "<html><title>502 Bad Gateway</title></html>", 502)

    sim.fake.on_call = bad_gateway
    w = sim.writer(RetryPolicy(max_attempts=4, item_timeout=10.0))
    jobs = sim.run(w, batches(2000))
    failures = [f for j in jobs for f in j.failures]
    assert {(f.code, f.retryable) for f in failures} == {("HTTP502", True)}
    assert sorted(f.position for f in failures) == list(range(25))  # k25..k49, batch 2
    assert len(sim.fake.items) == 2000 - 25
    assert "502 Bad Gateway" in failures[0].message and "<" not in failures[0].message


def test_an_outage_is_ridden_out_and_told_while_it_lasts() -> None:
    """Nothing answers for a minute in the middle of the import: every item still goes
    in, none is dead-lettered, and the hook hears when it began and when it ended."""
    sim = Sim()
    began = sim.clock() + 0.02  # the whole import takes about 0.06 s without it
    sim.fake.down = (began, began + 60.0)
    w = sim.writer(max_inflight=16)
    jobs = sim.run(w, batches(5000))
    assert not any(j.failures for j in jobs)
    assert len(sim.fake.items) == 5000
    (since, cause), (back, _) = sim.outages
    assert began <= since < began + 0.1 and "EndpointConnectionError" in cause
    assert back is None
    assert sim.clock() < began + 60.0 + 25.0  # back at work within a capped backoff


def test_an_outage_longer_than_max_outage_stops_the_run_naming_the_last_error() -> None:
    sim = Sim()
    began = sim.clock() + 0.02  # the whole import takes about 0.06 s without it
    sim.fake.down = (began, began + 10_000)
    sim.fake.down_error = client_error("ServiceUnavailable", "try again later", status=503)
    w = sim.writer(RetryPolicy(max_outage=120.0), max_inflight=8)
    with pytest.raises(ServiceError, match="ServiceUnavailable: try again later") as e:
        sim.run(w, batches(2000))
    assert "has not answered for 1" in e.value.message
    assert "Could not connect" not in e.value.message
    assert began + 120.0 <= sim.clock() < began + 120.0 + 25.0


def test_a_413_from_a_proxy_splits_the_request_and_dead_letters_the_item_too_large() -> None:
    sim = Sim()
    sim.fake.max_body = 4000
    batch = encoded(*({"pk": f"k{i}", "pad": "x" * (5000 if i == 7 else 300)} for i in range(25)))
    failures = sim.writer().write(*keyed(batch))
    assert [(f.position, f.code, f.retryable) for f in failures] == [(7, "HTTP413", False)]
    assert "too large for something between rimport and DynamoDB" in failures[0].message
    assert len(sim.fake.items) == 24


def test_an_untrusted_certificate_stops_at_once_with_a_hint() -> None:
    sim = Sim()
    sim.fake.fail_next = [SSLError(endpoint_url="https://x", error="certificate verify failed")]
    with pytest.raises(ServiceError, match="certificate") as e:
        sim.writer().write(*keyed(items(3)))
    assert "AWS_CA_BUNDLE" in (e.value.hint or "")
    assert sim.fake.calls == 1


def test_an_error_about_the_request_as_a_whole_is_not_retried() -> None:
    fake = FakeDynamo()
    fake.fail_next = [client_error("AccessDeniedException", "no")]
    with pytest.raises(ServiceError, match="AccessDeniedException: no") as e:
        writer(fake).write(*keyed(items(3)))
    assert "credentials" in (e.value.hint or "")
    assert fake.calls == 1


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    for attempt in range(1, 12):
        cap = min(1.0, 0.1 * 2**attempt)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2
    assert 0 <= policy.delay(5000) <= 1.0  # hundreds of attempts through an outage


def test_throttling_halves_the_requests_in_flight_and_success_wins_them_back() -> None:
    sim = Sim()
    w = sim.writer(RetryPolicy(base_delay=0.0, max_delay=0.0), max_inflight=16)
    assert w.limit == 16
    sim.fake.fail_next = ["ThrottlingException"]
    w.write(*keyed(items(1)))
    assert w.limit == 8
    sim.fake.fail_next = ["ProvisionedThroughputExceededException"]
    w.write(*keyed(items(1, "b")))
    assert w.limit == 4
    for i in range(20):
        w.write(*keyed(items(1, f"c{i}")))
    assert 4 < w.limit < 16
    for i in range(200):
        w.write(*keyed(items(1, f"d{i}")))
    assert w.limit == 16
    assert w.throttled == 2


def test_against_a_capped_table_it_settles_at_the_cap_with_few_throttles() -> None:
    """A table that takes 1,500 items/s (a one-second bucket, as DynamoDB's burst)."""
    sim = Sim()
    sim.fake.capacity = 1500.0
    w = sim.writer(max_inflight=16)
    started = sim.clock()
    jobs = sim.run(w, batches(30_000))
    elapsed = sim.clock() - started
    assert not any(j.failures for j in jobs) and len(sim.fake.items) == 30_000
    assert 1400 < 30_000 / elapsed <= 1500
    assert sim.fake.throttled < 0.02 * sim.transport.requests
    assert w.pace is not None and 1000 < w.pace < 3000


def test_refusals_that_do_not_depend_on_the_rate_do_not_slow_it_down() -> None:
    """A server that hands back 20% of every batch whatever the rate: 5,000 items of 1 KB
    in under 20 s (122 s with a pace that followed what the table took)."""
    sim = Sim()
    sim.fake.unprocessed_share = 0.2
    w = sim.writer(max_inflight=16)
    started = sim.clock()
    jobs = sim.run(w, batches(5000, size=1000))
    assert not any(j.failures for j in jobs) and len(sim.fake.items) == 5000
    assert sim.clock() - started <= 20.0
    assert w.pace is None


def test_refusals_that_do_not_depend_on_the_rate_at_wall_clock() -> None:
    """The same, once for real: the fake answers at once, the clock is the real one."""
    fake = FakeDynamo()
    fake.unprocessed_share = 0.2
    w = writer(fake, RetryPolicy(), max_inflight=16)
    started = time.monotonic()
    jobs = [w.submit(*keyed(b)) for b in batches(5000, size=1000)]
    while not all(j.done for j in jobs):
        w.poll(block=True)
    assert len(fake.items) == 5000
    assert time.monotonic() - started <= 20.0


def test_max_wcu_spaces_the_requests_out() -> None:
    sim = Sim(latency=0.0)
    w = sim.writer(max_inflight=4, max_wcu=50)
    big = encoded(*({"pk": f"k{i}", "blob": "x" * 1500} for i in range(100)))  # 2 WCU each
    started = sim.clock()
    for i in range(0, 100, 25):
        w.write(*keyed(big[i : i + 25]))
    assert len(sim.fake.items) == 100
    # 200 units at 50/s, the first 50 from a full bucket: 3 s
    assert sim.clock() - started == pytest.approx(3.0)


def test_item_size_follows_dynamodb_rules() -> None:
    item = to_item({"pk": "abc", "n": Decimal("123.4500"), "ok": True, "m": {"a": [1, "xy"]}})
    # name + value: pk 2+3; n 1+(5 significant digits -> 3+1); ok 2+1;
    # m 1 + map(3 + per entry 1 + "a" 1 + list(3 + (1 + number 2) + (1 + string 2)))
    assert item_size(item) == (2 + 3) + (1 + 4) + (2 + 1) + (1 + 3 + 1 + 1 + 3 + 3 + 3)
    assert write_units(item) == 1
    assert write_units(to_item({"pk": "x" * 2000})) == 2


def test_leftovers_it_cannot_recognise_are_all_sent_again() -> None:
    """If the service hands back an item written in a way the writer cannot match to one it
    sent, it cannot tell which one it was, so it resends the whole request."""

    class Normalising:
        def __init__(self) -> None:
            self.sent: list[list[str]] = []

        def batch_write_item(self, RequestItems: dict) -> dict:
            puts = RequestItems["t"]
            self.sent.append([p["PutRequest"]["Item"]["pk"]["N"] for p in puts])
            if len(self.sent) > 1:
                return {"UnprocessedItems": {}}
            back = {"PutRequest": {"Item": {"pk": {"S": "1.50"}}}}  # sent as a number
            return {"UnprocessedItems": {"t": [back, puts[2]]}}

    client = Normalising()
    w = Writer(SyncTransport(client), "t", ("pk",), FAST)
    assert w.write(*keyed(encoded(*({"pk": Decimal(v)} for v in ("0", "1.50", "2"))))) == []
    assert client.sent == [["0", "1.50", "2"], ["0", "1.50", "2"]]
