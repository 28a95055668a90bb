"""rimport: resumable, crash-safe import of large JSON dumps into DynamoDB.

    from resumable_import import import_file, resume_run
    result = import_file("dump.json", "messages", progress=lambda items, done, total: ...)

Everything a caller needs is listed in `__all__`; other modules are internals.
"""

from .dynamo import KeySpec
from .errors import (
    FileChangedError,
    InputError,
    LedgerError,
    RimportError,
    RunBusyError,
    ServiceError,
    TableError,
    UsageError,
)
from .ledger import Ledger, Run
from .run import ImportResult, RunInterrupted, import_file, resume_run, retry_failed, run_status
from .writer import RetryPolicy

__all__ = [
    "FileChangedError",
    "ImportResult",
    "InputError",
    "KeySpec",
    "Ledger",
    "LedgerError",
    "RetryPolicy",
    "RimportError",
    "Run",
    "RunBusyError",
    "RunInterrupted",
    "ServiceError",
    "TableError",
    "UsageError",
    "import_file",
    "resume_run",
    "retry_failed",
    "run_status",
]
