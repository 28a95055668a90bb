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
    from .dynamo import table_keys
    from .endpoint import is_loopback, redacted
    from .errors import (
        Arg,
        Command,
        CredentialsError,
        FileChangedError,
        InputError,
        KeyMismatchError,
        KeyMistake,
        LedgerError,
        RimportError,
        RunBusyError,
        RunInterrupted,
        ServiceError,
        Stopped,
        TableError,
        TableMissingError,
        Text,
        UsageError,
    )
    from .export import ExportResult, export_run, fix_commands, sidecar_path
    from .folder import (
        Entry,
        FolderResult,
        empty_partition,
        folder_of,
        import_folder,
        plan,
        table_for,
    )
    from .forget import Forgotten, finished_runs, forget_runs
    from .hints import rimport_command
    from .hooks import Hooks
    from .keys import KeySpec
    from .ledger import Ledger, Run
    from .loop import ImportResult
    from .options import (
        DEFAULT_CONCURRENCY,
        MAX_WORKERS,
        ImportOptions,
        ResumeOptions,
        SettingsChange,
        WriteSettings,
    )
    from .progress import Figures
    from .progressbar import progress_bar
    from .records import Verification
    from .requestruns import import_requests, request_tables
    from .run import (
        LedgerHealth,
        check_ledger,
        dead_letter_counts,
        import_file,
        resume_run,
        retry_failed,
        run_status,
        settings_of,
    )
    from .transform import load_transform
    from .validate import Report, validate_file
    from .verdict import Difference, VerifyResult
    from .verify import VerifyOptions, runs_of, verify_run
    from .via import StagingPlan, cancel_via, import_via, plan_via, staging_of
    from .writer import RetryPolicy

# Loaded on first use, so that a process needing one module (the reader process imports
# only the reading side) does not import botocore and the rest for nothing.
_HOMES = {
    "dynamo": ["table_keys"],
    "endpoint": ["is_loopback", "redacted"],
    "errors": ["Arg", "Command", "CredentialsError", "FileChangedError", "InputError",
               "KeyMismatchError", "KeyMistake", "LedgerError", "RimportError", "RunBusyError",
               "RunInterrupted", "ServiceError", "Stopped", "TableError", "TableMissingError",
               "Text", "UsageError"],
    "export": ["ExportResult", "export_run", "fix_commands", "sidecar_path"],
    "folder": ["Entry", "FolderResult", "empty_partition", "folder_of", "import_folder", "plan",
               "table_for"],
    "forget": ["Forgotten", "finished_runs", "forget_runs"],
    "hints": ["rimport_command"],
    "hooks": ["Hooks"],
    "keys": ["KeySpec"],
    "ledger": ["Ledger", "Run"],
    "options": ["DEFAULT_CONCURRENCY", "MAX_WORKERS", "ImportOptions", "ResumeOptions",
                "SettingsChange", "WriteSettings"],
    "progress": ["Figures"],
    "records": ["Verification"],
    "requestruns": ["import_requests", "request_tables"],
    "progressbar": ["progress_bar"],
    "loop": ["ImportResult"],
    "run": ["LedgerHealth", "check_ledger", "dead_letter_counts", "import_file", "resume_run",
            "retry_failed", "run_status", "settings_of"],
    "transform": ["load_transform"],
    "validate": ["Report", "validate_file"],
    "verify": ["VerifyOptions", "runs_of", "verify_run"],
    "verdict": ["Difference", "VerifyResult"],
    "via": ["StagingPlan", "cancel_via", "import_via", "plan_via", "staging_of"],
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
    "DEFAULT_CONCURRENCY",
    "MAX_WORKERS",
    "Arg",
    "Command",
    "CredentialsError",
    "Difference",
    "Entry",
    "ExportResult",
    "Figures",
    "FileChangedError",
    "FolderResult",
    "Forgotten",
    "Hooks",
    "ImportOptions",
    "ImportResult",
    "InputError",
    "KeyMismatchError",
    "KeyMistake",
    "KeySpec",
    "Ledger",
    "LedgerError",
    "LedgerHealth",
    "Report",
    "ResumeOptions",
    "RetryPolicy",
    "RimportError",
    "Run",
    "RunBusyError",
    "RunInterrupted",
    "ServiceError",
    "SettingsChange",
    "StagingPlan",
    "Stopped",
    "TableError",
    "TableMissingError",
    "Text",
    "UsageError",
    "Verification",
    "VerifyOptions",
    "VerifyResult",
    "WriteSettings",
    "cancel_via",
    "check_ledger",
    "dead_letter_counts",
    "empty_partition",
    "export_run",
    "finished_runs",
    "fix_commands",
    "folder_of",
    "forget_runs",
    "import_file",
    "import_folder",
    "import_requests",
    "import_via",
    "is_loopback",
    "load_transform",
    "plan",
    "plan_via",
    "progress_bar",
    "redacted",
    "request_tables",
    "resume_run",
    "retry_failed",
    "rimport_command",
    "run_status",
    "runs_of",
    "settings_of",
    "sidecar_path",
    "staging_of",
    "table_for",
    "table_keys",
    "validate_file",
    "verify_run",
]
