"""A ready progress bar for the Python API, where the first version's users ran their
imports: a notebook. `Hooks(progress="bar")` or `progress_bar()` draws through
`tqdm.auto`, a widget in Jupyter (with ipywidgets; text without them) and text in a
terminal, so a caller need not write an `on_progress` of their own to see how far an
import has got.

A bar per run: one hooks value given to a folder's import, or to a run and then its
resume, opens a new bar when a new run begins (its figures start again below the last
ones) and closes each at its final figures.
"""

from __future__ import annotations

from typing import Any

from .progress import Figures, OnProgress


class ProgressBar:
    """An `OnProgress` that draws `Figures` as a tqdm bar of the file's bytes, with items,
    items/s and, once there are any, retries, throttled answers and dead letters."""

    def __init__(self, desc: str = "rimport", **tqdm_options: Any) -> None:
        self._desc = desc
        self._options = tqdm_options
        self._bar: Any = None
        self._last: Figures | None = None

    def __call__(self, f: Figures) -> None:
        last = self._last
        if (
            self._bar is not None
            and last is not None
            and (f.bytes_done < last.bytes_done or f.items < last.items)
        ):  # a new run with the same hooks
            self.close()
        if self._bar is None:
            from tqdm.auto import tqdm  # loaded for a bar only: the CLI draws its own

            self._bar = tqdm(
                total=f.bytes_total, initial=f.bytes_done, unit="B", unit_scale=True,
                unit_divisor=1000, desc=self._desc, **self._options,
            )  # fmt: skip
            self._last = f
        bar = self._bar
        if f.bytes_total and bar.total != f.bytes_total:
            bar.total = f.bytes_total
        bar.update(f.bytes_done - bar.n)
        extra = [f"{f.items:,} items", f"{f.rate:,.0f} items/s"]
        extra += [f"{n:,} {what}" for n, what in ((f.retries, "retries"),
                  (f.throttled, "throttled"), (f.dead_letters, "dead letters")) if n]  # fmt: skip
        bar.set_postfix_str(", ".join(extra), refresh=False)
        bar.refresh()
        self._last = f
        if f.final:
            self.close()

    def close(self) -> None:
        """Leave the bar as it last stood (a run stopped or interrupted before its end)."""
        if self._bar is not None:
            self._bar.close()
        self._bar, self._last = None, None


def progress_bar(desc: str = "rimport", **tqdm_options: Any) -> OnProgress:
    """A progress bar for `Hooks(on_progress=...)`; `tqdm_options` go to tqdm (`leave`,
    `file`, `ncols`, ...)."""
    return ProgressBar(desc, **tqdm_options)


def chained(*calls: OnProgress | None) -> OnProgress | None:
    """One `OnProgress` that tells each of `calls` (those not None), in order."""
    given = [c for c in calls if c is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def tell(f: Figures) -> None:
        for call in given:
            call(f)

    return tell
