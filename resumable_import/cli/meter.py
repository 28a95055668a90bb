"""How the command shows a run's progress on stderr: a bar, log lines, JSON lines, or nothing.

- `bar`: a tqdm bar (bytes of the file for percent and ETA, items and items/s, and
  retries, throttled answers and dead letters once there are any);
- `log`: a line every RIMPORT_PROGRESS_INTERVAL seconds (5 by default) and one at the
  end, for a file or a CI log that a bar would fill with carriage returns;
- `json`: the same as one JSON object a line, for machines;
- `auto`: the bar on a terminal, `log` otherwise.

Sizes are in SI units (1 MB = 1,000,000 bytes) everywhere, as `validate` reports them.
Only the command uses this module: the library hands out `progress.Figures`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import IO, Any

from tqdm import tqdm

from resumable_import import Figures

from .hints import spelled

MODES = ("auto", "bar", "log", "json", "none")
DEFAULT_INTERVAL = 5.0  # seconds between two lines of `log` and `json`


def open_meter(mode: str, *, quiet: bool = False, verbose: bool = False) -> Meter:
    """The meter for `mode`; `quiet` makes `auto` show nothing and drops notices."""
    stream = sys.stderr
    if mode == "auto":
        mode = "none" if quiet else ("bar" if stream.isatty() else "log")
    kind = {"bar": _Bar, "log": _Lines, "json": _JsonLines}.get(mode, Meter)
    return kind(stream, quiet=quiet, verbose=verbose)


class Meter:
    """Shows nothing but notices; the others show progress too."""

    def __init__(self, stream: IO[str], *, quiet: bool = False, verbose: bool = False) -> None:
        self._stream = stream
        self._quiet = quiet
        self._verbose = verbose
        self._handler: logging.Handler | None = None
        self.run_id: str | None = None

    def begin(self, total: int | None, done: int = 0, items: int = 0) -> None:
        """A new file (or run) starts, `done` bytes and `items` in."""

    def __call__(self, figures: Figures) -> None:
        """The library's `on_progress`."""

    def note(self, line: str) -> None:
        """A line worth seeing while the run goes on (the endpoint stopped answering)."""
        if not self._quiet:
            self._write(spelled(line))

    def _write(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def close(self) -> None:
        """Done: the bar's last state stays on screen."""

    def __enter__(self) -> Meter:
        if self._verbose:  # each retry and checkpoint, as the log file has them, in words
            self._handler = _ToMeter(self)
            logger = logging.getLogger("rimport")
            logger.addHandler(self._handler)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None:
            logging.getLogger("rimport").removeHandler(self._handler)
        self.close()


class _ToMeter(logging.Handler):
    """-v: the run's log events on stderr, above the bar. Outages are left out: the notice
    says them already."""

    def __init__(self, meter: Meter) -> None:
        super().__init__(logging.INFO)
        self._meter = meter

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) not in ("outage", "outage_over"):
            self._meter._write(record.getMessage())


class _Lines(Meter):
    """A line every interval, and the last one at the end."""

    def __init__(self, stream: IO[str], **kw: Any) -> None:
        super().__init__(stream, **kw)
        self._interval = interval()
        self._next = time.monotonic() + self._interval
        self._last: Figures | None = None
        self._shown: Figures | None = None

    def begin(self, total: int | None, done: int = 0, items: int = 0) -> None:
        self._flush()
        self._next = time.monotonic() + self._interval
        self._last = self._shown = None

    def __call__(self, figures: Figures) -> None:
        self._last = figures
        now = time.monotonic()
        if figures.final or now >= self._next:
            self._next = now + self._interval
            self._show(figures)

    def _show(self, figures: Figures) -> None:
        self._shown = figures
        self._write(self.render(figures))

    def _flush(self) -> None:
        """A stopped run's last figures (not shown yet) still get their line."""
        if self._last is not None and self._last is not self._shown:
            self._show(self._last)

    def close(self) -> None:
        self._flush()

    def render(self, f: Figures) -> str:
        parts = [f"{f.items:,} item" + ("" if f.items == 1 else "s")]
        if f.percent is not None and f.bytes_total is not None:
            parts.append(f"{f.percent:.1f}% ({mb(f.bytes_done)} of {mb(f.bytes_total)})")
        else:
            parts.append(f"{mb(f.bytes_done)} read")
        parts.append(f"{f.rate:,.0f} items/s")
        if f.eta is not None and not f.final:
            parts.append(f"ETA {clock(f.eta)}")
        parts += [f"{f.retries:,} retries", f"{f.throttled:,} throttled",
                  f"{f.dead_letters:,} dead letters"]  # fmt: skip
        head = f"run {self.run_id}: " if self.run_id else ""
        return f"{head}{'done' if f.final else 'progress'}: " + ", ".join(parts)


class _JsonLines(_Lines):
    def render(self, f: Figures) -> str:
        return json.dumps({"event": "progress", "run": self.run_id, **f.as_dict()})


class _Bar(Meter):
    """A tqdm bar over the bytes of the file, with the run's figures after it."""

    def __init__(self, stream: IO[str], **kw: Any) -> None:
        super().__init__(stream, **kw)
        self._bar: tqdm | None = None

    def begin(self, total: int | None, done: int = 0, items: int = 0) -> None:
        self.close()
        known = total or None
        self._bar = tqdm(
            total=known, initial=min(done, known) if known else done, file=self._stream,
            unit="B", unit_scale=True, unit_divisor=1000, ncols=width(self._stream),
            bar_format=(
                "{percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B [{elapsed}<{remaining}]{postfix}"
                if known
                else "{n_fmt}B read [{elapsed}]{postfix}"
            ),
        )  # fmt: skip

    def __call__(self, f: Figures) -> None:
        if self._bar is None:
            self.begin(f.bytes_total)
        bar = self._bar
        assert bar is not None
        bar.ncols = width(self._stream)  # a resized terminal, or one that says 0 columns
        extra = "".join(
            f", {n:,} {what}"
            for n, what in (
                (f.retries, "retries"), (f.throttled, "throttled"), (f.dead_letters, "dead"),
            )
            if n
        )  # fmt: skip
        bar.set_postfix_str(f"{f.items:,} items, {f.rate:,.0f} items/s{extra}", refresh=False)
        bar.update(f.bytes_done - bar.n)
        if f.final:
            bar.refresh()

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            super()._write(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def width(stream: IO[str]) -> int:
    """The terminal's columns; 80 when it cannot say or says 0 (some pseudo-terminals)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    if columns <= 0:
        try:
            columns = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
    return columns if columns > 0 else 80


def interval() -> float:
    """Seconds between two progress lines: RIMPORT_PROGRESS_INTERVAL, else 5."""
    try:
        seconds = float(os.environ.get("RIMPORT_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return seconds if seconds >= 0 else DEFAULT_INTERVAL


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def clock(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
