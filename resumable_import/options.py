"""The settings a run writes with, and the limits they must keep."""

from __future__ import annotations

from .errors import UsageError

DEFAULT_CONCURRENCY = 16  # requests in flight: enough to hide ~10 ms of network latency


SETTINGS = ("batch_size", "concurrency", "max_wcu", "max_outage")
"""The run's options that `resume` may change: how it writes, not what."""


def check_settings(
    *,
    batch_size: int | None = None,
    concurrency: int | None = None,
    max_wcu: float | None = None,
    max_outage: float | None = None,
) -> None:
    """Refuse settings DynamoDB or the writer cannot work with; None is "not given"."""
    if batch_size is not None and not 1 <= batch_size <= 25:
        raise UsageError(
            f"batch_size must be between 1 and 25, not {batch_size}", param="batch_size"
        )
    if concurrency is not None and concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, not {concurrency}", param="concurrency")
    if max_wcu is not None and max_wcu <= 0:
        raise UsageError(f"max_wcu must be positive, not {max_wcu}", param="max_wcu")
    if max_outage is not None and max_outage < 0:
        raise UsageError(
            f"max_outage must be 0 or more seconds, not {max_outage}", param="max_outage"
        )
