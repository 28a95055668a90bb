"""In a notebook, where the first version's users ran their imports (issue 17): a ready
progress bar (`Hooks(progress="bar")`, through tqdm.auto), and Ctrl-C (a KeyboardInterrupt
in the kernel, as Jupyter's interrupt sends it) leaving a resumable run. A real notebook,
executed by nbclient on an ipykernel, imports into DynamoDB Local."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_table_equals, dump_items

from resumable_import import Hooks, UsageError

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _dump(path: Path, n: int) -> Path:
    path.write_text(json.dumps([{"pk": f"k{i}", "n": i, "tags": ["a", str(i)]} for i in range(n)]))
    return path


CELLS = [
    """
import signal
from resumable_import import (Hooks, ImportOptions, RunInterrupted, WriteSettings,
                              import_file, resume_run, run_status)
options = ImportOptions(endpoint=ENDPOINT, settings=WriteSettings(concurrency=2))
result = import_file(SMALL, TABLE, options, Hooks(progress="bar"), ledger=LEDGER)
print("first:", result.state, result.items_written)
""",
    """
def ctrl_c(figures):
    if figures.items >= 500 and not figures.final:
        signal.raise_signal(signal.SIGINT)  # what Jupyter's interrupt button sends the kernel

try:
    import_file(BIG, BIG_TABLE, options, Hooks(progress="bar", on_progress=ctrl_c),
                ledger=LEDGER)
except RunInterrupted as e:
    print("stopped:", e.message)
    print("hint:", e.hint)
(run,) = [r for r in run_status(ledger=LEDGER) if r.table == BIG_TABLE]
print("state:", run.state, run.items_committed)
""",
    """
done = resume_run(run.id, hooks=Hooks(progress="bar"), ledger=LEDGER)
print("resumed:", done.state, done.items_committed)
""",
]


def test_a_notebook_imports_with_a_bar_and_ctrl_c_leaves_a_resumable_run(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    small, big = _dump(tmp_path / "small.json", 300), _dump(tmp_path / "big.json", 20_000)
    big_table = table + "-big"
    ddb.create_table(
        TableName=big_table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    given = {"ENDPOINT": endpoint, "SMALL": str(small), "BIG": str(big), "TABLE": table,
             "BIG_TABLE": big_table, "LEDGER": str(ledger)}  # fmt: skip
    setup = "\n".join(f"{k} = {v!r}" for k, v in given.items())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup)] + [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()

    def text(cell: Any) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    first, stopped, resumed = (text(c) for c in nb.cells[1:])
    assert "first: completed 300\n" in first
    assert "100%" in first  # the bar, as text: no ipywidgets here
    assert "stopped: interrupted; run " in stopped
    state = stopped.rsplit("state: ", 1)[1].split()
    assert state[0] == "interrupted"
    assert 500 <= int(state[1]) < 20_000
    assert "resume_run(" in stopped  # the hint, in Python's words
    assert "resumed: completed 20000\n" in resumed
    assert_table_equals(ddb, table, dump_items(small))
    assert_table_equals(ddb, big_table, dump_items(big))


def test_progress_is_a_callback_or_bar() -> None:
    assert Hooks(progress="bar").progress is None
    assert Hooks(progress="bar").on_progress is not None
    with pytest.raises(UsageError, match="a callback, or 'bar'"):
        Hooks(progress="bars")  # type: ignore[arg-type]
