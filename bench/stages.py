"""Where a whole run's CPU goes, by stage: a sampling profile of `rimport start` (py-spy),
each sample given to the stage of its innermost frame that belongs to one.

`bench/steps.py` times each step alone in a tight loop, with hot caches; amid a run the
same steps cost more (h11 took 2.2 µs/item alone and about 10 in the run). This measures
them where they run, so target 1 prints both. Shares of the samples are scaled to the run's
CPU per item as target 1 measured it without the profiler.

    python bench/stages.py RAW_PROFILE [--us-per-item 31]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_TRANSPORT = ("transport.py", "connections.py", "selectors.py")
_READ = ("jsontext.py", "reader.py", "sources.py")
# (stage, what a frame's text holds to belong to it), the first match from the innermost
# frame outwards wins: signing called from the transport counts as signing.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("fingerprint: the file's SHA-256 and block hashes", ("fingerprint.py",)),
    ("start-up: imports", ("<frozen importlib",)),
    ("checkpoint commit (ledger)", ("_Committer.commit", "Ledger.commit")),
    ("HTTP framing (http1, httptools)", ("http1.py",)),
    ("signing: SigV4, the body's SHA-256", ("signing.py",)),
    ("sockets, selector, connections (transport)", _TRANSPORT),
    ("writer bookkeeping, answers, flow", ("writer.py", "answers.py", "outcomes.py", "flow.py")),
    ("convert (attributes)", ("attributes.py",)),
    ("read: split and decode (reader, jsontext, msgspec)", _READ),
    ("serialise, key and size checks (checks, orjson)", ("checks.py",)),
    ("batching and the run loop", ("batching.py", "pipeline.py", "loop.py")),
]
OTHER = "other"


def available() -> str | None:
    """The py-spy command, if installed beside this Python or on PATH (`pip install
    py-spy`; it needs ptrace)."""
    here = str(Path(sys.executable).parent)
    return shutil.which("py-spy", path=os.pathsep.join((here, os.environ.get("PATH", ""))))


def record(spy: str, cmd: list[str], out: Path, env: dict[str, str]) -> None:
    """Run `cmd` under py-spy at 250 samples a second, writing its collapsed stacks."""
    subprocess.run(
        [spy, "record", "-r", "250", "-f", "raw", "-o", str(out), "--", *cmd],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def shares(raw: Path) -> dict[str, float]:
    """Each stage's share of the samples in a collapsed-stacks file."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        counts[_stage(stack.split(";"))] += int(n)
    total = sum(counts.values()) or 1
    return {stage: count / total for stage, count in counts.items()}


def _stage(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, marks in STAGES:
            if any(mark in frame for mark in marks):
                return stage
    return OTHER


def print_stages(parts: dict[str, float], us_per_item: float) -> None:
    print("| stage, amid a whole run (py-spy) | CPU µs/item |")
    print("|---|---:|")
    for stage in [s for s, _ in STAGES] + [OTHER]:
        print(f"| {stage} | {parts.get(stage, 0.0) * us_per_item:.1f} |")
    print(f"| the run, one process (target 1) | {us_per_item:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--us-per-item", type=float, default=100.0)
    args = parser.parse_args()
    print_stages(shares(args.raw), args.us_per_item)


if __name__ == "__main__":
    main()
