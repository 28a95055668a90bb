"""Options as values: their limits, what the ledger keeps of them, and the calls that take
them (issue 16)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from resumable_import import (
    ImportOptions,
    SettingsChange,
    UsageError,
    WriteSettings,
    import_file,
    import_folder,
    resume_run,
    retry_failed,
)
from resumable_import.options import Recorded


@pytest.mark.parametrize("call", [import_file, resume_run, import_folder, retry_failed])
def test_the_calls_that_run_an_import_take_eight_parameters_at_most(
    call: Callable[..., Any],
) -> None:
    assert len(inspect.signature(call).parameters) <= 8


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"batch_size": 0}, "batch_size must be between 1 and 25, not 0"),
        ({"batch_size": 26}, "batch_size must be between 1 and 25, not 26"),
        ({"concurrency": 0}, "concurrency must be at least 1, not 0"),
        ({"max_wcu": 0}, "max_wcu must be positive, not 0"),
        ({"max_outage": -1}, "max_outage must be 0 or more seconds, not -1"),
    ],
)
def test_settings_out_of_range_are_refused_in_python_words(
    given: dict[str, Any], message: str
) -> None:
    for kind in (WriteSettings, SettingsChange):
        with pytest.raises(UsageError) as refused:
            kind(**given)
        assert refused.value.message == message
        assert refused.value.param == next(iter(given))


def test_a_change_keeps_what_it_does_not_name() -> None:
    started = WriteSettings(batch_size=10, concurrency=2, max_wcu=100, max_outage=60)
    assert started.changed_by(SettingsChange()) == started
    assert started.changed_by(SettingsChange(concurrency=1)) == WriteSettings(10, 1, 100, 60)


def test_the_defaults_are_those_of_the_settings() -> None:
    assert ImportOptions().settings == WriteSettings()
    assert Recorded().settings == WriteSettings()


def test_the_record_reads_back_into_the_same_values_in_the_same_json() -> None:
    recorded = Recorded(
        WriteSettings(2, 1, 500, 60), True, ("pk:S", "sk:N"), {"spec": "m:f", "sha256": None}
    )
    stored = recorded.record()
    assert list(stored) == ["batch_size", "concurrency", "max_wcu", "allow_remote",
                            "max_outage", "keys", "transform"]  # fmt: skip
    assert Recorded.read(stored) == recorded


def test_what_an_older_rimport_did_not_record_reads_as_the_default() -> None:
    old = {"batch_size": 25, "concurrency": 4, "max_wcu": None, "allow_remote": False}
    assert Recorded.read(old) == Recorded(WriteSettings(concurrency=4))
