"""The ledger's files: where it lives, that they are its user's alone (dead letters hold
whole items: 0600 files in a 0700 folder rimport creates), the numbered migrations in
`migrations/` that shape its schema, and what to do when SQLite or the file system
refuses it (read-only, a full disk, a damaged file)."""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import Arg, Command, LedgerError, Text

LEDGER_PATH = Arg("ledger", "PATH")
ELSEWHERE = Text("pass ", LEDGER_PATH, " (or set RIMPORT_LEDGER) to put the ledger elsewhere")


def default_path() -> Path:
    """`$RIMPORT_LEDGER`, else the per-user state file."""
    if env := os.environ.get("RIMPORT_LEDGER"):
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "rimport" / "ledger.sqlite"


def private_folder(folder: Path) -> None:
    """Create the ledger's folder for this user alone; say clearly why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise LedgerError(
            f"cannot create the ledger's folder {folder}: a file is in the way",
            ELSEWHERE,
        ) from None
    except OSError as e:
        raise LedgerError(
            f"cannot create the ledger's folder {folder}: {e.strerror.lower()}",
            ELSEWHERE,
        ) from None


def private_file(path: Path, *, create: bool = True) -> None:
    """Make `path` readable by this user alone (creating it if asked): it holds items."""
    try:
        if create and not path.exists():
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        elif path.exists() and path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o600)
    except OSError as e:
        if create and not path.exists():
            raise LedgerError(
                f"cannot create the ledger {path}: {e.strerror.lower()}",
                ELSEWHERE,
            ) from None
        # An existing file we may not change (another owner, a read-only folder): SQLite
        # says what matters when it opens it.


def migrations() -> list[tuple[int, str]]:
    """The numbered SQL files, in order: shipped in the installed package as
    `resumable_import.migrations`, or in `migrations/` beside a source checkout."""
    try:
        folder: Any = resources.files("resumable_import.migrations")
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parent.parent / "migrations"
    found = []
    for entry in folder.iterdir():
        if m := re.fullmatch(r"(\d{4})_\w+\.sql", entry.name):
            found.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> Iterator[str]:
    """Split a script into statements, so a migration can run inside our own transaction."""
    current: list[str] = []
    for line in script.splitlines(keepends=True):
        current.append(line)
        text = "".join(current)
        if sqlite3.complete_statement(text):
            if text.strip().strip(";").strip():
                yield text
            current = []


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing. A WAL ledger still needs its `-shm` file, which
    a full disk may not let SQLite create: with an empty or no `-wal` file there is
    nothing the main file lacks, and `immutable` reads it as it is."""
    uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        db.execute("PRAGMA user_version").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size:
            raise
    return sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)


def damaged_hint(path: Path) -> Text:
    check = Command("ledger check", (), (Arg("ledger", str(path)),))
    return Text(check, " says which runs it still holds; pass ", LEDGER_PATH,
                " to record new runs in a new file")  # fmt: skip


def sqlite_error(path: Path, e: sqlite3.Error, doing: str) -> LedgerError:
    """One line for what SQLite said, by its error code, with what to do."""
    name = getattr(e, "sqlite_errorname", "")
    other = Text("pass ", LEDGER_PATH, " (or set RIMPORT_LEDGER) to use another file")
    if name.startswith("SQLITE_READONLY"):
        return LedgerError(
            f"the ledger {path} is read-only ({e})",
            Text("make it and its folder writable (chmod u+w), or ", other),
        )
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        return LedgerError(
            f"cannot {doing} the ledger {path}: {e} (is the disk full?)",
            "free some space on that disk; what was committed before is kept",
        )
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT"):
        return LedgerError(
            f"the ledger {path} is damaged ({e})",
            damaged_hint(path),
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return LedgerError(
            f"cannot open the ledger {path} ({e})", Text("check the path, or ", other)
        )
    return LedgerError(f"cannot {doing} the ledger {path}: {e}", other)


def check_version(
    db: sqlite3.Connection, path: Path, latest: int, *, read_only: bool = False
) -> int:
    """The ledger's schema version, refused if newer than `latest` (the last migration
    known here), or older when it cannot be brought up to date."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > latest:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, newer than this "
            f"rimport knows ({latest})",
            Text("upgrade rimport, or pass ", LEDGER_PATH, " to start a separate ledger"),
        )
    if read_only and version < latest:
        raise LedgerError(
            f"the ledger {path} is read-only and was written by an older rimport",
            "make it writable once (chmod u+w) so that rimport can bring it up to date",
        )
    return version
