"""The writer against a fake with injected faults: what is retried, isolated or fatal."""

from __future__ import annotations

import pytest
from fakes import FakeDynamo, client_error

from resumable_import.errors import ServiceError
from resumable_import.items import to_item
from resumable_import.writer import BatchWriter, RetryPolicy

FAST = RetryPolicy(max_attempts=4, base_delay=0.0001, max_delay=0.001)


def items(n: int, prefix: str = "k") -> list[dict]:
    return [to_item({"pk": f"{prefix}{i}", "v": i}) for i in range(n)]


def writer(fake: FakeDynamo, policy: RetryPolicy = FAST) -> BatchWriter:
    return BatchWriter(fake, fake.table, fake.key_names, policy)


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
    assert writer(fake).write(items(25)) == []
    assert len(fake.items) == 25
    assert fake.calls == len(faults) + 1


def test_unprocessed_items_are_sent_again_until_written() -> None:
    fake = FakeDynamo()
    fake.unprocessed = {"k3": 2, "k7": 1}
    assert writer(fake).write(items(25)) == []
    assert len(fake.items) == 25
    assert fake.calls == 3


def test_a_poisoned_item_is_dead_lettered_alone_and_its_batch_mates_written() -> None:
    fake = FakeDynamo()
    fake.poison = {"k13"}
    failures = writer(fake).write(items(25))
    assert [(f.position, f.code, f.retryable) for f in failures] == [
        (13, "ValidationException", False)
    ]
    assert sorted(k[0] for k in fake.items) == sorted(f"k{i}" for i in range(25) if i != 13)


def test_two_poisoned_items_are_both_isolated() -> None:
    fake = FakeDynamo()
    fake.poison = {"k0", "k24"}
    failures = writer(fake).write(items(25))
    assert sorted(f.position for f in failures) == [0, 24]
    assert len(fake.items) == 23


def test_items_still_unprocessed_after_every_attempt_are_retryable_dead_letters() -> None:
    fake = FakeDynamo()
    fake.unprocessed = {"k5": 100}
    failures = writer(fake).write(items(10))
    assert [(f.position, f.code, f.retryable) for f in failures] == [(5, "Unprocessed", True)]
    assert len(fake.items) == 9


def test_a_fault_that_outlasts_every_attempt_stops_the_run() -> None:
    fake = FakeDynamo()
    fake.fail_next = ["connection"] * 10
    with pytest.raises(ServiceError, match="kept failing after 4 attempts"):
        writer(fake).write(items(3))
    assert fake.items == {}


def test_an_error_about_the_request_as_a_whole_is_not_retried() -> None:
    fake = FakeDynamo()
    fake.fail_next = [client_error("AccessDeniedException", "no")]
    with pytest.raises(ServiceError, match="AccessDeniedException") as e:
        writer(fake).write(items(3))
    assert "credentials" in (e.value.hint or "")
    assert fake.calls == 1


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    for attempt in range(1, 12):
        cap = min(1.0, 0.1 * 2**attempt)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2
