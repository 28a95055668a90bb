"""`rimport`: flags in, one call into the library, results out.

Every error the user can cause arrives as a RimportError and leaves as one line, a hint
and an exit code; a traceback only with --debug. The CLI is a client of the library like
any Python caller: it imports only what `resumable_import.__all__` offers.

    app.py           the app, its global flags, error translation, signals, `main`
    options.py       the arguments and options several commands share
    importing.py     start, resume, validate (and the meter, the run id, niceness)
    dead_letters.py  retry-failed, dead-letters
    status.py        status
    verify.py        verify
    forget.py        forget, ledger check
    render.py        outcomes, the table of runs, one run, reports, exit codes
    hints.py         the library's remedies in flags
    meter.py         the progress meter on stderr
"""

from __future__ import annotations

from .app import app, main

# The commands add themselves to `app` as they are imported, and `--help` lists them in
# that order: keep these lines in it.
# isort: off
from . import importing  # noqa: F401  start, validate, resume
from . import dead_letters  # noqa: F401  retry-failed, dead-letters
from . import status  # noqa: F401
from . import verify  # noqa: F401
from . import forget  # noqa: F401  forget, ledger check
# isort: on

__all__ = ["app", "main"]
