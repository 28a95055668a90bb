"""What a caller is told as a run goes: one value, so that the calls that run an import
take it whole rather than a parameter for each callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .ledger import Run
    from .progress import OnProgress, Progress
    from .runlog import Notice


@dataclass(frozen=True)
class Hooks:
    """`on_start` is called with each run before anything is written, so a caller can tell
    its user which run to resume should this one be killed; `notice` is told, as one line,
    when the endpoint stops answering and when it answers again, and how a file that reads
    two ways is read; `progress` and `on_progress` how far it has got (`progress.py`);
    `on_file` each file of a folder before it is imported (a `folder.Entry`, named here
    only in words: the folder's calls take these hooks, and no module imports back).

    `progress="bar"` draws a ready progress bar (`progressbar.py`: a widget in Jupyter,
    text elsewhere) and tells `on_progress` too, if given."""

    progress: Progress | Literal["bar"] | None = None
    on_progress: OnProgress | None = None
    on_start: Callable[[Run], None] | None = None
    notice: Notice | None = None
    on_file: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        if self.progress == "bar":
            from .progressbar import chained, progress_bar

            object.__setattr__(self, "progress", None)
            object.__setattr__(self, "on_progress", chained(progress_bar(), self.on_progress))
        elif isinstance(self.progress, str):
            from .errors import UsageError

            raise UsageError(
                f"progress={self.progress!r}: a callback, or 'bar' for a ready progress bar",
                param="progress",
            )
