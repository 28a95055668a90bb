"""Write `old-ledger.sqlite`: an interrupted run, recorded by rimport as it was before its
options became values (issue 16), for `test_old_ledger.py` to resume with today's code.

Run once from the repository root, with the rimport of that time (commit 5efd158) on the
path:

    python tests/data/make_old_ledger.py

It is kept as written, not made again: the point is a ledger that today's code did not
write. The dump's path, recorded absolute, is replaced by its bare name, so the ledger
names no machine; the test puts the machine's own paths back in its copy.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fakes import FakeDynamo  # noqa: E402

from resumable_import import import_file  # noqa: E402
from resumable_import.errors import RunInterrupted  # noqa: E402
from resumable_import.keys import KeySpec  # noqa: E402

DUMP = HERE / "old-run.jsonl"
LEDGER = HERE / "old-ledger.sqlite"
ITEMS = 20
STOP_AT = 6  # items committed when the user "presses Ctrl-C"


def main() -> None:
    DUMP.write_text(
        "".join(json.dumps({"pk": f"item-{i:02d}", "n": i, "tags": ["a", str(i)]}) + "\n"
                for i in range(ITEMS)),
        encoding="utf-8",
    )  # fmt: skip
    for stale in (LEDGER, LEDGER.with_name(LEDGER.name + "-wal")):
        stale.unlink(missing_ok=True)

    def interrupt(items: int, done: int, total: int) -> None:
        if items >= STOP_AT:
            raise KeyboardInterrupt

    fake = FakeDynamo("old")
    try:
        import_file(DUMP, "old", ledger=LEDGER, client=fake, batch_size=2, concurrency=1,
                    max_wcu=500, max_outage=60, create_keys=(KeySpec("pk", "S"),),
                    progress=interrupt)  # fmt: skip
    except RunInterrupted as e:
        print(e)
    with sqlite3.connect(LEDGER) as db:
        db.execute("UPDATE runs SET file = ?", (DUMP.name,))
        db.execute("PRAGMA journal_mode = DELETE")
    with sqlite3.connect(LEDGER) as db:
        db.execute("VACUUM")  # no page left holding the path it replaced
    shutil.rmtree(LEDGER.with_name(LEDGER.name + ".locks"), ignore_errors=True)
    (HERE / "rimport.log").unlink(missing_ok=True)  # the run's event log, beside the ledger


if __name__ == "__main__":
    main()
