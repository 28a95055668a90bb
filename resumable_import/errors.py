"""The exceptions rimport raises, and what the CLI makes of them.

    RimportError            anything rimport reports to a user (message + hint + exit code)
    ├── UsageError          bad arguments, unknown run id, refused endpoint           exit 2
    ├── InputError          the dump itself is unreadable or malformed                exit 2
    │   └── FileChangedError  the dump differs from the one the run started on      exit 2
    ├── TableError          the table is missing or its key schema does not fit       exit 2
    │   ├── TableMissingError  no such table, and no key to create it with
    │   └── KeyMismatchError   the first items all fail the table's key the same way
    ├── RunBusyError        another process holds the run                             exit 1
    ├── ServiceError        DynamoDB kept failing or refused the request as a whole   exit 1
    │   └── CredentialsError  the credentials could not be had to sign a request    exit 1
    ├── LedgerError         the ledger cannot be opened or written (read-only, disk full,
    │                       damaged) or was written by a newer rimport
    └── RunInterrupted      Ctrl-C, SIGTERM or SIGHUP stopped a run at its checkpoint  128+N

    Stopped (a KeyboardInterrupt)  SIGTERM or SIGHUP, so that a run stops as on Ctrl-C

    KeyMistake             what a KeyMismatchError found: the key, the attribute, the fit

The library raises these and never prints; the CLI (`cli.app`) turns each into one line,
its hint and its exit code. What to do is data, not a command line: a message or hint is a
`Text` of plain words, `Arg`s (an argument to pass: `Arg("format", "jsonl")`) and
`Command`s (`Command("resume", (run_id,))`). The CLI spells them in its flags
(`--format jsonl`, `rimport resume ID`); a Python caller reads `message` and `hint` in
its own words (`format='jsonl'`, `resume_run('ID')`). What else the CLI needs travels as
attributes (`param`, the table, the keys, the KeyMistake). This module imports no other of
the package, so that every one may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Union


class Arg(NamedTuple):
    """An argument a remedy names, as the library's options call it: `Arg("format",
    "jsonl")`, `Arg("new", True)`; without a value, the argument itself (`Arg("items_path")`)."""

    name: str
    value: Any = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value!r}"


# The library call that does what a command does, for a Python caller's reading of a hint.
CALLS = {
    "start": "import_file", "resume": "resume_run", "retry-failed": "retry_failed",
    "status": "run_status", "validate": "validate_file", "dead-letters": "export_run",
    "ledger check": "check_ledger", "verify": "verify_run",
}  # fmt: skip


class Command(NamedTuple):
    """A command a remedy asks for: `verb` as the CLI names it (a key of CALLS), its
    words (a run id, a path) and its arguments."""

    verb: str
    words: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()

    def __str__(self) -> str:
        inner = ", ".join([*(repr(w) for w in self.words), *map(str, self.args)])
        return f"`{CALLS.get(self.verb, self.verb)}({inner})`"


Part = Union[str, Arg, Command]  # noqa: UP007 (a runtime alias)


class Text(str):
    """Words for a user in parts, so that each reader gets them in its own spelling: as
    a str it is a Python caller's (`format='jsonl'`); the CLI spells each Arg and Command
    of `parts` itself. `+` keeps the parts; an f-string or `.replace` flattens them into
    Python's words, so text that names an argument is joined with `+` or `Text(...)`."""

    parts: tuple[Part, ...]

    def __new__(cls, *parts: Part) -> Text:
        flat: list[Part] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, Text) else (part,))
        text = super().__new__(cls, "".join(map(str, flat)))
        text.parts = tuple(flat)
        return text

    def __add__(self, other: object) -> Text:  # type: ignore[override]
        if not isinstance(other, (str, Arg, Command)):
            return NotImplemented
        return Text(self, other)

    def __radd__(self, other: object) -> Text:
        if not isinstance(other, (str, Arg, Command)):
            return NotImplemented
        return Text(other, self)

    @classmethod
    def joined(cls, sep: str, texts: Iterable[Part]) -> Text:
        """`sep.join(texts)`, keeping each one's parts."""
        parts: list[Part] = []
        for i, t in enumerate(texts):
            parts += [sep, t] if i else [t]
        return cls(*parts)


SAMPLE_ITEMS = 100  # the first items of a dump that show a key mistake shared by all


class KeyAttribute(Protocol):
    """A key attribute as a mistake names it (`keys.KeySpec` is one): this module is the
    leaf every other imports, so it names the shape and imports no module for it."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...


class RimportError(Exception):
    """A failure the user can understand and act on.

    `param`: the argument the message or hint names, as a Python caller spells it
    (`batch_size`, `new=True`); the CLI puts its flag in its place (`--batch-size`).
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, param: str | None = None):
        super().__init__(message)
        self.message = message  # a Text when it names an argument or a command
        self.hint = hint
        self.param = param


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


class TableMissingError(TableError):
    """No table `table` at `endpoint`, and no key given for it.

    `param` names the argument that would give it: `create_keys` (import, to have the
    table created) or `keys` (validate, to check a dump against the key it will have).
    `attribute`: the partition key's name when known, else a placeholder in the hint.
    """

    def __init__(
        self, table: str, endpoint: str, attribute: str | None = None, *, param: str = "create_keys"
    ) -> None:
        key = f"{param}=(KeySpec({attribute or 'NAME'!r}, 'S'),)"
        hint = (
            f"create it, or pass {key} (its key's name and type: S, N or B) to have it created"
            if param == "create_keys"
            else f"pass the key it will have: {key} (name and type: S, N or B)"
        )
        super().__init__(f"table {table!r} does not exist at {endpoint}", hint, param=param)
        self.table, self.endpoint, self.attribute = table, endpoint, attribute


@dataclass(frozen=True)
class KeyMistake:
    """Every one of the first `items` items fails the key the same way: a key type given
    wrong, or a dump that is not for this table, rather than a few bad items.

    It lives with the error that carries it, so that the CLI can say it in flags."""

    items: int
    keys: tuple[KeyAttribute, ...]  # the key they were checked against
    attribute: str  # the key attribute at fault
    found: str  # what the items hold there: "a string", "of type S", or "missing"
    fitting: tuple[KeyAttribute, ...] | None  # the key they would fit; None if no type fits
    others: tuple[str, ...]  # the first item's attributes, for a missing key attribute

    @property
    def fitting_keys(self) -> str | None:
        """The key the items fit, as Python writes it: `(KeySpec('pk', 'S'),)`."""
        if not self.fitting:
            return None
        return "(" + "".join(f"KeySpec({k.name!r}, {k.type!r}), " for k in self.fitting)[:-1] + ")"

    @property
    def message(self) -> str:
        if self.items == 1:
            which, first = "the only item", "it"
        elif self.items >= SAMPLE_ITEMS:
            which, first = f"each of the first {self.items} items", "the first"
        else:
            which, first = f"each of the {self.items} items", "the first"
        if self.found == "missing":
            have = f" ({first} has {', '.join(self.others)})" if self.others else ""
            return f"key attribute {self.attribute!r} is missing from {which}{have}"
        key = ", ".join(f"{k.name}:{k.type}" for k in self.keys)
        return f"key attribute {self.attribute!r} is {self.found} in {which}, but the key is {key}"


class KeyMismatchError(TableError):
    """All of the first items fail the key the same way: a wrong key type given, or a dump
    that is not for this table. Dead-lettering every item would help no one.

    `stage` says where it was found: "validate", "create" (before creating the table, which
    was not created) or "run" (the run wrote nothing and is recorded as failed).
    """

    def __init__(self, mistake: KeyMistake, stage: str, hint: str | None) -> None:
        super().__init__(mistake.message, hint)
        self.mistake, self.stage = mistake, stage


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
        return Text(
            "the table is gone or on another endpoint/region; check ",
            Arg("table"),
            " and ",
            Arg("endpoint"),
        )
    if code in {
        "UnrecognizedClientException",
        "AccessDeniedException",
        "InvalidSignatureException",
    }:
        return (
            "check your AWS credentials and permissions "
            "(DynamoDB Local accepts only letters and digits in the access key id)"
        )
    return Text(
        "check ", Arg("endpoint"), " and ", Arg("region"), ", and that DynamoDB (Local) is running"
    )


class RunInterrupted(RimportError):
    """Ctrl-C, SIGTERM or SIGHUP: the checkpoint is saved and `rimport resume` continues
    from it. The exit code is the shell's for that signal: 130, 143, 129."""

    exit_code = 130

    def __init__(self, message: str, hint: str | None = None, *, signum: int = 2) -> None:
        super().__init__(message, hint)
        self.exit_code = 128 + signum
