"""The exceptions rimport raises, and what the CLI makes of them.

    RimportError            anything rimport reports to a user (message + hint + exit code)
    ├── UsageError          bad arguments, unknown run id, refused endpoint           exit 2
    ├── InputError          the dump itself is unreadable or malformed                exit 2
    │   └── FileChangedError  the dump differs from the one the run started on      exit 2
    ├── TableError          the table is missing or its key schema does not fit       exit 2
    ├── RunBusyError        another process holds the run                             exit 1
    ├── ServiceError        DynamoDB kept failing or refused the request as a whole   exit 1
    │   └── CredentialsError  the credentials could not be had to sign a request    exit 1
    └── LedgerError         the ledger cannot be opened or written (read-only, disk full,
                            damaged) or was written by a newer rimport

    Stopped (a KeyboardInterrupt)  SIGTERM or SIGHUP, so that a run stops as on Ctrl-C

The library raises these and never prints; `cli.py` turns each into one line, its hint
and its exit code.
"""

from __future__ import annotations


class RimportError(Exception):
    """A failure the user can understand and act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(RimportError):
    exit_code = 2


class InputError(RimportError):
    """The dump cannot be read from `offset` on; everything before it is usable."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        offset: int | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.offset = offset
        self.index = index


class FileChangedError(InputError):
    pass


class TableError(RimportError):
    exit_code = 2


class RunBusyError(RimportError):
    pass


class ServiceError(RimportError):
    """DynamoDB failed in a way that retrying this batch will not fix (or retries ran out).

    The run stops with its checkpoint intact; `rimport resume` continues once the cause is gone.
    """


class CredentialsError(ServiceError):
    """No request can be signed: refreshing the credentials failed (an expired SSO token or
    AWS_SESSION_TOKEN, an unreachable credential provider).

    Waiting does not help, so the run stops at once; once the user renews the credentials,
    `rimport resume` continues from the checkpoint.
    """


class LedgerError(RimportError):
    pass


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: a run stops as on Ctrl-C, and the exit code says which
    signal (128 + its number, as a shell reports a process it killed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def hint_for(code: str) -> str:
    """What to do about a DynamoDB error code that stops a run."""
    if code == "ResourceNotFoundException":
        return "the table is gone or on another endpoint/region; check --table and --endpoint"
    if code in {
        "UnrecognizedClientException",
        "AccessDeniedException",
        "InvalidSignatureException",
    }:
        return (
            "check your AWS credentials and permissions "
            "(DynamoDB Local accepts only letters and digits in the access key id)"
        )
    return "check --endpoint and --region, and that DynamoDB (Local) is running"
