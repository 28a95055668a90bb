"""rimport: resumable, crash-safe import of large JSON dumps into DynamoDB.

    from resumable_import import Hooks, ImportOptions, WriteSettings, import_file
    result = import_file("dump.json", "messages", ImportOptions(settings=WriteSettings(
        concurrency=8)), Hooks(progress=lambda items, done, total: ...))

Everything a caller needs is listed in `__all__`; other modules are internals.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        FileChangedError,
        InputError,
        KeyMismatchError,
        LedgerError,
        RimportError,
        RunBusyError,
        RunInterrupted,
        ServiceError,
        TableError,
        TableMissingError,
        UsageError,
    )
    from .folder import FolderResult, import_folder
    from .hooks import Hooks
    from .keys import KeySpec
    from .ledger import Ledger, Run
    from .loop import ImportResult
    from .options import ImportOptions, ResumeOptions, SettingsChange, WriteSettings
    from .progress import Figures
    from .run import (
        import_file,
        resume_run,
        retry_failed,
        run_status,
    )
    from .validate import Report, validate_file
    from .writer import RetryPolicy

# Loaded on first use, so that a process needing one module (the reader process imports
# only the reading side) does not import botocore and the rest for nothing.
_HOMES = {
    "errors": ["FileChangedError", "InputError", "KeyMismatchError", "LedgerError",
               "RimportError", "RunBusyError", "RunInterrupted", "ServiceError", "TableError",
               "TableMissingError", "UsageError"],
    "folder": ["FolderResult", "import_folder"],
    "hooks": ["Hooks"],
    "keys": ["KeySpec"],
    "ledger": ["Ledger", "Run"],
    "progress": ["Figures"],
    "loop": ["ImportResult"],
    "options": ["ImportOptions", "ResumeOptions", "SettingsChange", "WriteSettings"],
    "run": ["import_file", "resume_run", "retry_failed", "run_status"],
    "validate": ["Report", "validate_file"],
    "writer": ["RetryPolicy"],
}  # fmt: skip
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "Figures",
    "FileChangedError",
    "FolderResult",
    "Hooks",
    "ImportOptions",
    "ImportResult",
    "InputError",
    "KeyMismatchError",
    "KeySpec",
    "Ledger",
    "LedgerError",
    "Report",
    "ResumeOptions",
    "RetryPolicy",
    "RimportError",
    "Run",
    "RunBusyError",
    "RunInterrupted",
    "ServiceError",
    "SettingsChange",
    "TableError",
    "TableMissingError",
    "UsageError",
    "WriteSettings",
    "import_file",
    "import_folder",
    "resume_run",
    "retry_failed",
    "run_status",
    "validate_file",
]
