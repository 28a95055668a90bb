"""The cyclic garbage collector, paused while a run writes.

Every item is some fifty small dicts and lists that die young by reference counting, yet
they trigger the collector, which then walks every item in flight: measured at a quarter
of the client's CPU per item. The cycles it exists for are a handful per request (inside
botocore), which the run loop collects on its own schedule (`loop.COLLECT_EVERY`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection (every 700 allocations) inside; as before after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
