"""Who is running a run: the process that runs it holds an exclusive `flock` on a lock file
beside the ledger, which the kernel drops however the process dies. So whether a run is
alive is never written anywhere, and a run marked `running` whose lock is free was
interrupted."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import Command, LedgerError, RunBusyError, Text
from .ledgerfiles import LEDGER_PATH

_LOCK_PATIENCE = 0.5  # seconds a taken run lock is tried again before the run counts as busy


class RunLocks:
    """The lock files of one ledger's runs, in `folder` (0700, beside the ledger)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        """Hold the run for this process; a second holder gets RunBusyError.

        `is_held` (every `status`, every look at a run) takes the lock for a moment to
        test it, so a lock found taken is tried again for a while: a prober lets go within
        microseconds, a process running the run holds it to the end.
        """
        try:
            self.folder.mkdir(exist_ok=True, mode=0o700)
            fd = os.open(self.folder / f"{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise LedgerError(
                f"cannot lock run {run_id} in {self.folder}: {e.strerror.lower()}",
                Text(
                    "make the ledger's folder writable, or pass ",
                    LEDGER_PATH,
                    " to use another file",
                ),
            ) from None
        deadline = time.monotonic() + _LOCK_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                os.close(fd)
                raise RunBusyError(
                    f"run {run_id} is being run by another rimport process right now",
                    Text(
                        "wait for it to finish, or stop it first; ",
                        Command("status"),
                        " shows its progress",
                    ),
                ) from None
        self._held[run_id] = fd
        try:
            yield
        finally:
            del self._held[run_id]
            os.close(fd)

    def is_held(self, run_id: str) -> bool:
        """Held by this process or another: what `status` shows as running."""
        if run_id in self._held:
            return True
        try:
            fd = os.open(self.folder / f"{run_id}.lock", os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def holds(self, run_id: str) -> bool:
        """This process holds the run."""
        return run_id in self._held

    def remove(self, run_id: str) -> None:
        """The lock file of a run that is gone (forgotten), while it is held."""
        with contextlib.suppress(OSError):
            (self.folder / f"{run_id}.lock").unlink()
