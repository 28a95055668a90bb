"""rimport: resumable, crash-safe import of large JSON dumps into DynamoDB.

    from resumable_import import import_file, import_folder, validate_file
    result = import_file("dump.json", "messages", progress=lambda items, done, total: ...)

Everything a caller needs is listed in `__all__`; other modules are internals.
"""

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
from .folder import FolderResult, import_folder
from .items import KeySpec
from .ledger import Ledger, Run
from .run import ImportResult, RunInterrupted, import_file, resume_run, retry_failed, run_status
from .validate import Report, validate_file
from .writer import RetryPolicy

__all__ = [
    "FileChangedError",
    "FolderResult",
    "ImportResult",
    "InputError",
    "KeySpec",
    "Ledger",
    "LedgerError",
    "Report",
    "RetryPolicy",
    "RimportError",
    "Run",
    "RunBusyError",
    "RunInterrupted",
    "ServiceError",
    "TableError",
    "UsageError",
    "import_file",
    "import_folder",
    "resume_run",
    "retry_failed",
    "run_status",
    "validate_file",
]
