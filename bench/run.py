"""rimport against the two usual designs, side by side in one run, on this machine.

    python bench/run.py [--quick] [--only 11]

Starts its own DynamoDB Local and stand-in endpoints (bench/standin.py: instant, 10 ms of
latency, or capped at a rate), writes deterministic dumps into .cache/bench/, runs
`rimport` and the baselines of bench/baselines.py as child processes, and prints a
markdown table: items/s, CPU µs per item and peak RSS (from the kernel's rusage of each
child), and the item count the endpoint verified. Then one line per target, and with
target 1 a table of the CPU per item of each step of the write path (bench/steps.py).
Shared machines are noisy: read the ratios measured in the same run, not the absolutes.
`--quick` shrinks every dump tenfold, to check the script itself.
"""

# ruff: noqa: E402  (the spawner below must start before the heavy imports)
from __future__ import annotations

import subprocess
import sys

# Children report their peak RSS through the kernel (wait4), which counts what a child
# inherited at fork. So every child is spawned by this small process, started before the
# benchmark loads boto3 and its data, and the reading is the child's own (plus ~10 MB).
_SPAWNER = subprocess.Popen(
    [
        sys.executable,
        "-c",
        """
import json, os, subprocess, sys
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        proc = subprocess.Popen(job["cmd"], stdout=out, stderr=err, env=job["env"])
        _, status, usage = os.wait4(proc.pid, 0)
    print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,
                      usage.ru_maxrss]), flush=True)
""",
    ],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
)

import argparse
import contextlib
import gzip
import json
import os
import shutil
import signal
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import dynamodb_local
import make_dump
import stages
import steps

from resumable_import.fingerprint import block_hashes, fingerprint
from resumable_import.ledger import Ledger
from resumable_import.options import Recorded

CACHE = ROOT / ".cache" / "bench"
BIN = Path(sys.executable).parent
ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
    ENV.pop(_name, None)


@dataclass
class Row:
    target: str
    scenario: str
    tool: str
    items: int
    seconds: float
    cpu: float  # seconds of user + system CPU
    rss_kb: int
    verified: int | str
    writing: float = 0.0  # seconds from the endpoint's first write to its last, if known

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_item(self) -> float:
        return self.cpu / self.items * 1e6 if self.items else 0.0


@dataclass
class Child:
    seconds: float
    cpu: float
    rss_kb: int
    stdout: str
    stderr: str
    code: int


def run_child(cmd: list[str], codes: tuple[int, ...] = (0,), **env: str) -> Child:
    """Run a command and read its own CPU time and peak RSS from the kernel; an exit code
    not in `codes` is an error."""
    assert _SPAWNER.stdin is not None and _SPAWNER.stdout is not None
    with tempfile.NamedTemporaryFile() as out, tempfile.NamedTemporaryFile() as err:
        started = time.monotonic()
        job = {"cmd": cmd, "env": {**ENV, **env}, "out": out.name, "err": err.name}
        _SPAWNER.stdin.write(json.dumps(job) + "\n")
        _SPAWNER.stdin.flush()
        code, cpu, rss_kb = json.loads(_SPAWNER.stdout.readline())
        seconds = time.monotonic() - started
        child = Child(seconds, cpu, rss_kb, out.read().decode(), err.read().decode(), code)
    if child.code not in codes:
        raise RuntimeError(f"{' '.join(cmd)} failed ({child.code}):\n{child.stderr[-2000:]}")
    return child


class Standin:
    def __init__(self, **options: float) -> None:
        self.port = dynamodb_local.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        self._proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "standin.py"), f"--port={self.port}", *args]
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.stats()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _call(self, path: str) -> dict[str, Any]:
        method = "POST" if path == "/reset" else "GET"
        req = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._call("/stats")

    def reset(self) -> None:
        self._call("/reset")

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait()


@contextmanager
def standin(**options: float) -> Iterator[Standin]:
    s = Standin(**options)
    try:
        yield s
    finally:
        s.close()


def dump(
    name: str, items: int, shape: str = "array", mark: int | None = None
) -> tuple[Path, int | None]:
    """A cached deterministic dump, and the byte offset after item `mark - 1` if asked."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{items}.{'jsonl' if shape == 'jsonl' else 'json'}"
    meta = path.with_name(path.name + ".offset")
    if not path.exists() or (mark and not meta.exists()):
        offset = make_dump.write_marked(path, items, shape, mark=mark)
        meta.write_text(json.dumps(offset))
    return path, json.loads(meta.read_text()) if meta.exists() else None


def gzipped(path: Path) -> Path:
    """A cached gzip (level 1) copy of a dump: the offsets of the original still hold."""
    out = path.with_name(path.name + ".gz")
    if not out.exists():
        with open(path, "rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return out


def rimport(
    *args: str | Path,
    ledger: Path,
    reader_process: bool | None = True,
    codes: tuple[int, ...] = (0,),
) -> Child:
    """Run rimport; `reader_process` None: as the machine's cores decide."""
    env = {"RIMPORT_LEDGER": str(ledger)}
    if reader_process is not None:
        env["RIMPORT_READER_PROCESS"] = str(int(reader_process))
    return run_child([str(BIN / "rimport"), *map(str, args)], codes, **env)


def baseline(design: str, path: Path, table: str, endpoint: str) -> Child:
    return run_child(
        [
            sys.executable,
            str(ROOT / "bench" / "baselines.py"),
            design,
            str(path),
            "--table",
            table,
            "--endpoint",
            endpoint,
        ]
    )


def on_standin(target: str, scenario: str, s: Standin, tool: str, items: int, work: Any) -> Row:
    s.reset()
    child = work()
    stats = s.stats()
    return Row(
        target,
        scenario,
        tool,
        items,
        child.seconds,
        child.cpu,
        child.rss_kb,
        stats["distinct_keys"],
        stats["last_write"] - stats["first_write"] if stats["first_write"] else 0.0,
    )


def count_items(client: Any, table: str) -> int:
    """The table's item count. DynamoDB Local keeps ItemCount live (AWS updates it every few
    hours), and a COUNT scan of 100,000 items takes it minutes; the test suite compares
    tables item by item instead."""
    return int(client.describe_table(TableName=table)["Table"]["ItemCount"])


def ceiling(endpoint: str, path: Path, items: int, table: str, threads: int = 16) -> float:
    """DynamoDB Local's own limit: pre-signed BatchWriteItem bodies replayed at once."""
    from concurrent.futures import ThreadPoolExecutor
    from http.client import HTTPConnection
    from urllib.parse import urlsplit

    from resumable_import.dynamo import connect
    from resumable_import.keys import KeySpec
    from resumable_import.pipeline import ready_batches
    from resumable_import.reader import Dump
    from resumable_import.signing import Signer

    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
    conn = connect(endpoint, "us-east-1")
    conn.client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    signer = Signer(conn.client, conn.credentials)
    requests = [
        signer.request(table, b.items)[:2]
        for b in ready_batches(
            Dump.open(path), None, (KeySpec("pk", "S"),), 25, reader_process=False
        )
    ]
    host = urlsplit(endpoint)
    chunks = [requests[i::threads] for i in range(threads)]

    def replay(chunk: list[tuple[bytes, dict[str, str]]]) -> None:
        http = HTTPConnection(host.hostname, host.port, timeout=60)
        for body, headers in chunk:
            http.request("POST", "/", body, headers)
            response = http.getresponse()
            response.read()
            assert response.status == 200, response.status

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(replay, chunks))
    seconds = time.monotonic() - started
    assert count_items(conn.client, table) == items
    return items / seconds


def resume_first_write(
    s: Standin, path: Path, shape: str, items: int, offset: int, tmp: Path
) -> tuple[float, float]:
    """Seconds from `rimport resume` to its first write, with the checkpoint at 90%; and
    the part of that spent checking the file hash."""
    ledger = tmp / f"resume-{shape}.sqlite"
    with Ledger(ledger) as book:
        hashing = time.monotonic()
        digest, blocks = fingerprint(path)
        hashing = time.monotonic()
        block_hashes(path)  # what resume does: the part of its time that is the check
        hashing = time.monotonic() - hashing
        run = book.create_run(
            file=str(path),
            file_size=path.stat().st_size,
            file_hash=digest,
            table="t",
            endpoint=s.url,
            region="us-east-1",
            format="auto",
            shape=shape,
            block_hashes=blocks,
            options=Recorded(keys=("pk:S",)),
        )
        book.commit(run.id, items_committed=items * 9 // 10, byte_offset=offset, written=0, dead=[])
        book.set_state(run.id, "interrupted")
    s.reset()
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN / "rimport"), "resume", run.id],
        env={**ENV, "RIMPORT_LEDGER": str(ledger)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while (first := s.stats()["first_write"]) is None:
        if proc.poll() is not None and s.stats()["first_write"] is None:
            raise RuntimeError(f"rimport resume wrote nothing: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate()
    return first - started, hashing


def commit_cost(tmp: Path) -> float:
    """CPU µs of one checkpoint commit (a batch, no dead letters), in this process."""
    with Ledger(tmp / "commit.sqlite") as book:
        run = book.create_run(
            file="f",
            file_size=1,
            file_hash="h",
            table="t",
            endpoint="e",
            region="r",
            format="auto",
            shape="array",
            options=Recorded(),
        )
        started = time.process_time()
        for i in range(2000):
            book.commit(run.id, items_committed=25 * i, byte_offset=1000 * i, written=25, dead=[])
        return (time.process_time() - started) / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="dumps ten times smaller")
    parser.add_argument(
        "--only",
        default="1,2,3,4,7,8,9,10,11,12,13",
        metavar="T,T",
        help="targets to measure (default: all); `pipe` and `s3` are target 9's scenarios, "
        "each beside the local file",
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    only = set(args.only.split(","))
    n = {
        k: v // scale
        for k, v in {
            "rimport": 300_000,
            "baseline": 20_000,
            "ddb": 100_000,
            "ddb_base": 20_000,
            "latency": 200_000,
            "latency_base": 10_000,
            "throttle": 30_000,
            "small": 100_000,
            "big": 2_500_000,
            "empty": 1_000_000,
            "mixed": 1_000_000,
        }.items()
    }
    rows: list[Row] = []
    per_step: list[tuple[str, float]] = []
    per_stage: dict[str, float] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="rimport-bench-"))
    ledger = tmp / "ledger.sqlite"
    limit, commit_us, big_size = 0.0, 0.0, 0
    resume: dict[str, tuple[float, float]] = {}
    throttled: dict[str, tuple[int, int]] = {}
    ledgers: dict[str, tuple[int, int]] = {}
    units: dict[str, float] = {}
    if "1" in only:
        rows += client_cost(n, ledger)
        print("1. where the CPU goes, step by step (bench/steps.py)", file=sys.stderr)
        per_step = steps.steps(dump("main", n["rimport"])[0], 20_000 // scale)
        per_stage = profiled(n, ledger, tmp)
    if "2" in only:
        ddb_rows, limit = dynamodb_local_rate(n, ledger)
        rows += ddb_rows
    if "3" in only:
        rows += latency(n, ledger)
    if "7" in only:
        thr_rows, throttled = throttling(n, ledger)
        rows += thr_rows
    if "4" in only:
        mem_rows, resume, big_size = memory_and_resume(n, ledger, tmp)
        rows += mem_rows
    if "8" in only:
        refused_rows, ledgers = refused_items(n, tmp)
        rows += refused_rows
    if "10" in only:
        rows += refused_between_good(n, tmp)
    if only & {"9", "pipe", "s3"}:
        wanted = {"pipe", "s3"} if "9" in only else only & {"pipe", "s3"}
        rows += sources(n, ledger, wanted)
    if "11" in only:
        verify_rows, units = verify_cost(n, ledger)
        rows += verify_rows
    if "12" in only:
        rows += via_staging(n, tmp)
    if "13" in only:
        rows += workers(n, ledger)
    commit_us = commit_cost(tmp)
    print_report(rows, limit, resume, commit_us, throttled, big_size, ledgers, units)
    if per_step:
        ours = next(r for r in rows if r.tool == "rimport, one process")
        print("\n1. CPU per item by step, each measured apart in this process (hot caches, "
              "so the rest also holds what cold caches cost the run):\n")  # fmt: skip
        steps.print_steps(per_step, ours.cpu_per_item)
        print("\n1. The same run's CPU by stage amid the whole run (bench/stages.py, a py-spy "
              "profile of a run of its own, scaled to the run's figure above):\n")  # fmt: skip
        if per_stage is None:
            print("(not measured: py-spy is not installed, or may not trace here)")
        else:
            stages.print_stages(per_stage, ours.cpu_per_item)


def profiled(n: dict[str, int], ledger: Path, tmp: Path) -> dict[str, float] | None:
    """Target 1's one-process run again, under py-spy: each stage's share of its samples,
    or None without py-spy (or where it may not trace)."""
    spy = stages.available()
    if spy is None:
        return None
    print("1. the same run under a sampling profiler (bench/stages.py)", file=sys.stderr)
    main_dump, _ = dump("main", n["rimport"])
    raw = tmp / "profile.raw"
    with standin() as s:
        cmd = [str(BIN / "rimport"), "start", str(main_dump), "--table", "t", "--endpoint",
               s.url, "--new"]  # fmt: skip
        env = {**ENV, "RIMPORT_LEDGER": str(ledger), "RIMPORT_READER_PROCESS": "0"}
        try:
            stages.record(spy, cmd, raw, env)
        except subprocess.CalledProcessError as e:
            print(f"   py-spy failed: {e.stderr.decode(errors='replace')[-300:]}", file=sys.stderr)
            return None
    return stages.shares(raw)


def client_cost(n: dict[str, int], ledger: Path) -> list[Row]:
    rows = []
    main_dump, _ = dump("main", n["rimport"])
    base_dump, _ = dump("main", n["baseline"])
    print("1. client cost against an instant endpoint", file=sys.stderr)
    with standin() as s:
        for split, label in ((False, "rimport, one process"), (True, "rimport + reader process")):
            rows.append(
                on_standin(
                    "1 client cost",
                    "instant endpoint",
                    s,
                    label,
                    n["rimport"],
                    lambda split=split: rimport(
                        "start",
                        main_dump,
                        "--table",
                        "t",
                        "--endpoint",
                        s.url,
                        "--new",  # the second run imports the file again, as the first did
                        ledger=ledger,
                        reader_process=split,
                    ),
                )
            )
        for design in ("client", "batch-writer"):
            rows.append(
                on_standin(
                    "1 client cost",
                    "instant endpoint",
                    s,
                    f"boto3 {design}",
                    n["baseline"],
                    lambda d=design: baseline(d, base_dump, "t", s.url),
                )
            )

    return rows


def dynamodb_local_rate(n: dict[str, int], ledger: Path) -> tuple[list[Row], float]:
    rows = []
    print("2. DynamoDB Local", file=sys.stderr)
    ddb_dump, _ = dump("main", n["ddb"])
    ddb_base, _ = dump("main", n["ddb_base"])
    with dynamodb_local.running() as url:
        client = boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        ceiling(url, ddb_base, n["ddb_base"], "warmup")  # the JVM compiles its hot paths first
        limit = ceiling(url, ddb_dump, n["ddb"], "ceiling")
        rows.append(
            Row(
                "2 DynamoDB Local",
                "server ceiling (replay)",
                "pre-signed replay x16",
                n["ddb"],
                n["ddb"] / limit,
                0.0,
                0,
                n["ddb"],
            )
        )
        child = rimport(
            "start",
            ddb_dump,
            "--table",
            "rimport",
            "--endpoint",
            url,
            "--create-table",
            "--key",
            "pk:S",
            ledger=ledger,
        )
        rows.append(
            Row(
                "2 DynamoDB Local",
                "DynamoDB Local",
                "rimport",
                n["ddb"],
                child.seconds,
                child.cpu,
                child.rss_kb,
                count_items(client, "rimport"),
            )
        )
        limit = max(limit, ceiling(url, ddb_dump, n["ddb"], "ceiling2"))
        for design in ("client", "batch-writer"):
            table = f"b-{design}"
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            child = baseline(design, ddb_base, table, url)
            rows.append(
                Row(
                    "2 DynamoDB Local",
                    "DynamoDB Local",
                    f"boto3 {design}",
                    n["ddb_base"],
                    child.seconds,
                    child.cpu,
                    child.rss_kb,
                    count_items(client, table),
                )
            )

    return rows, limit


def verify_cost(n: dict[str, int], ledger: Path) -> tuple[list[Row], dict[str, float]]:
    """The 100 MB dump imported into DynamoDB Local, then `verify` by key and by scan,
    each a child process timed as the import is; and the read units each says it used."""
    rows, units = [], {}
    print("11. verify against DynamoDB Local", file=sys.stderr)
    path, _ = dump("main", n["ddb"])
    warm, _ = dump("main", n["ddb_base"])
    with dynamodb_local.running() as url:
        client = boto3.client(
            "dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )  # fmt: skip
        rimport(  # the JVM compiles its hot paths first
            "start", warm, "--table", "warmup", "--endpoint", url, "--create-table",
            "--key", "pk:S", ledger=ledger,
        )  # fmt: skip
        child = rimport(
            "start", path, "--table", "verified", "--endpoint", url, "--create-table",
            "--key", "pk:S", ledger=ledger,
        )  # fmt: skip
        rows.append(
            Row("11 verify", "import", "rimport start", n["ddb"], child.seconds, child.cpu,
                child.rss_kb, count_items(client, "verified"))
        )  # fmt: skip
        run_id = child.stdout.strip()
        for method in ("get", "scan"):
            found = rimport("verify", run_id, "--method", method, "--json", ledger=ledger)
            answer = json.loads(found.stdout)
            units[method] = answer["read_units"]
            rows.append(
                Row("11 verify", f"verify by {'key' if method == 'get' else 'scan'}",
                    f"rimport verify --method {method}", answer["items"], found.seconds,
                    found.cpu, found.rss_kb, answer["identical"])
            )  # fmt: skip
    return rows, units


def latency(n: dict[str, int], ledger: Path) -> list[Row]:
    rows = []
    print("3. 10 ms of latency per request", file=sys.stderr)
    lat_dump, _ = dump("main", n["latency"])
    lat_base, _ = dump("main", n["latency_base"])
    with standin(latency_ms=10) as s:
        # Default settings first (the reader process is on from three cores up), then more
        # requests in flight, then the reader process forced on.
        for c, split in ((None, None), (64, False), (32, True)):
            flags = ["--concurrency", str(c)] if c else []
            tool = "rimport, default settings" if c is None else (
                f"rimport --concurrency {c}" + (" + reader process" if split else ", one process")
            )  # fmt: skip
            rows.append(
                on_standin(
                    "3 latency", "10 ms per request", s, tool, n["latency"],
                    lambda flags=flags, split=split: rimport(
                        "start", lat_dump, "--table", "t", "--endpoint", s.url, *flags,
                        "--new",  # else the runs after the first find the dump imported
                        ledger=ledger, reader_process=split,
                    ),
                )
            )  # fmt: skip
        rows.append(
            on_standin(
                "3 latency",
                "10 ms per request",
                s,
                "boto3 client",
                n["latency_base"],
                lambda: baseline("client", lat_base, "t", s.url),
            )
        )

    return rows


def workers(n: dict[str, int], ledger: Path) -> list[Row]:
    """`--workers 1` and `2` side by side, against the instant and the 10 ms stand-in, at
    the default concurrency and at 32 (each process keeps that many requests in flight).
    The peak RSS is the largest of any one process (the kernel's for the children waited
    for); the CPU is all of them together."""
    rows = []
    print("13. writer processes (--workers)", file=sys.stderr)
    path, _ = dump("main", n["latency"])
    for latency_ms in (0, 10):
        scenario = "instant stand-in" if not latency_ms else "10 ms per request"
        with standin(latency_ms=latency_ms) as s:
            for count, c in ((1, 16), (2, 16), (1, 32), (2, 32)):
                rows.append(
                    on_standin(
                        "13 workers", scenario, s, f"rimport --workers {count} --concurrency {c}",
                        n["latency"],
                        lambda count=count, c=c: rimport(
                            "start", path, "--table", "t", "--endpoint", s.url, "--new",
                            "--workers", str(count), "--concurrency", str(c), ledger=ledger,
                            reader_process=False,
                        ),
                    )
                )  # fmt: skip
    return rows


def throttling(n: dict[str, int], ledger: Path) -> tuple[list[Row], dict[str, tuple[int, int]]]:
    rows = []
    print("7. throttling", file=sys.stderr)
    thr_dump, _ = dump("main", n["throttle"])
    throttled = {}
    for tool in ("rimport", "boto3 client"):
        with standin(max_items_per_s=1500) as s:
            work = (
                (
                    lambda s=s: rimport(
                        "start", thr_dump, "--table", "t", "--endpoint", s.url, ledger=ledger
                    )
                )
                if tool == "rimport"
                else (lambda s=s: baseline("client", thr_dump, "t", s.url))
            )
            rows.append(
                on_standin("7 throttling", "capped at 1,500 items/s", s, tool, n["throttle"], work)
            )
            stats = s.stats()
            throttled[tool] = (stats["throttled"], stats["requests"])

    return rows, throttled


def memory_and_resume(
    n: dict[str, int], ledger: Path, tmp: Path
) -> tuple[list[Row], dict[str, tuple[float, float]], int]:
    rows = []
    print("4. memory, 5. resume", file=sys.stderr)
    small, _ = dump("mem", n["small"])
    big_items = n["big"]
    big, big_offset = dump("big", big_items, mark=big_items * 9 // 10)
    big_l, big_l_offset = dump("big", big_items, "jsonl", mark=big_items * 9 // 10)
    resume: dict[str, tuple[float, float]] = {}
    with standin() as s:
        for name, path, items in (
            ("100 MB", small, n["small"]),
            (f"{big.stat().st_size / 1e9:.1f} GB", big, big_items),
        ):
            rows.append(
                on_standin(
                    "4 memory",
                    f"{name} dump",
                    s,
                    "rimport",
                    items,
                    lambda p=path: rimport(
                        "start", p, "--table", "t", "--endpoint", s.url, ledger=ledger
                    ),
                )
            )
        assert big_offset and big_l_offset
        resume["array"] = resume_first_write(s, big, "array", big_items, big_offset, tmp)
        resume["jsonl"] = resume_first_write(s, big_l, "jsonl", big_items, big_l_offset, tmp)
        big_gz = gzipped(big_l)
        resume["jsonl+gzip"] = resume_first_write(s, big_gz, "jsonl", big_items, big_l_offset, tmp)
    return rows, resume, big.stat().st_size


def refused_items(n: dict[str, int], tmp: Path) -> tuple[list[Row], dict[str, tuple[int, int]]]:
    """`rimport start` on dumps whose every item is refused before sending: what memory,
    time and ledger space dead letters cost when no batch ever fills with good items.

    Each run has a folder of its own; the sizes of its ledger (with its WAL) and of the log
    beside it are returned by scenario. The verified column is the run's dead letters in the
    ledger; the stand-in must have received no item at all.
    """
    rows = []
    sizes: dict[str, tuple[int, int]] = {}
    print("8. refused items", file=sys.stderr)
    empty = empty_dump(n["empty"])
    big_items = n["big"]
    big, _ = dump("big", big_items, mark=big_items * 9 // 10)  # the one target 4 uses
    with standin() as s:
        client = boto3.client(
            "dynamodb",
            endpoint_url=s.url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.create_table(
            TableName="by-id",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        big_name = f"{big.stat().st_size / 1e9:.1f} GB dump, table keyed id:S"
        for scenario, path, items, table in (
            ("every item {}: MissingKey", empty, n["empty"], "t"),
            (big_name, big, big_items, "by-id"),
        ):
            ledger = tmp / f"refused-{table}" / "ledger.sqlite"
            s.reset()
            child = rimport(
                "start", path, "--table", table, "--endpoint", s.url, ledger=ledger, codes=(3,)
            )
            if s.stats()["puts"]:
                raise RuntimeError(f"{scenario}: the stand-in received items, none was expected")
            # measured before this process opens the ledger
            sizes[scenario] = (
                sum(
                    f.stat().st_size for f in (ledger, ledger.with_name(ledger.name + "-wal"))
                    if f.exists()
                ),
                log.stat().st_size if (log := ledger.with_name("rimport.log")).exists() else 0,
            )  # fmt: skip
            with Ledger(ledger) as book:
                dead = book.run(child.stdout.split()[0]).dead_letters
            shutil.rmtree(ledger.parent)  # gigabytes of dead letters in the full run
            rows.append(
                Row(
                    "8 refused items",
                    scenario,
                    "rimport",
                    items,
                    child.seconds,
                    child.cpu,
                    child.rss_kb,
                    dead,
                )
            )
    return rows, sizes


MIXED_BLOCKS = 4  # runs of refused elements, each between two runs of good items
MIXED_GOOD = 2_000  # good items in each run of them


def refused_between_good(n: dict[str, int], tmp: Path) -> list[Row]:
    """Runs of refused elements between runs of good items, behind an endpoint that answers
    in 2 s: while a good batch waits for its answer, the refused ones read after it may not
    pile up in memory. The verified column is the distinct keys the stand-in received; the
    run must also have dead-lettered every refused element."""
    print("10. refused between good items, 2 s answers", file=sys.stderr)
    refused = n["mixed"]
    path = mixed_dump(refused)
    good = MIXED_GOOD * (MIXED_BLOCKS + 1)
    ledger = tmp / "mixed" / "ledger.sqlite"
    with standin(latency_ms=2000) as s:
        row = on_standin(
            "10 refused between good", f"{refused:,} refused, {good:,} good", s, "rimport",
            refused + good,
            lambda: rimport("start", path, "--table", "t", "--endpoint", s.url, ledger=ledger,
                            codes=(3,)),
        )  # fmt: skip
    with Ledger(ledger) as book:
        (run,) = book.runs()
        if run.dead_letters != refused or row.verified != good:
            raise RuntimeError(
                f"refused between good: {run.dead_letters:,} dead letters (expected "
                f"{refused:,}), {row.verified:,} keys written (expected {good:,})"
            )
    shutil.rmtree(ledger.parent)
    return [row]


def mixed_dump(refused: int) -> Path:
    """A cached JSON array: MIXED_GOOD items keyed pk, then a run of elements refused for
    four reasons ({}, 1, "x", []), and so on; it starts and ends with good items."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"mixed-{refused}.json"
    if not path.exists():
        bad = [b"{}", b"1", b'"x"', b"[]"]
        per_block = refused // MIXED_BLOCKS
        with open(path, "wb") as f:
            f.write(b"[\n")
            for block in range(MIXED_BLOCKS + 1):
                if block:
                    f.write(b",\n".join(bad[i % 4] for i in range(per_block)) + b",\n")
                good = (
                    b'{"pk": "k%d", "v": "%s"}' % (block * MIXED_GOOD + i, b"x" * 200)
                    for i in range(MIXED_GOOD)
                )
                f.write(b",\n".join(good) + (b",\n" if block < MIXED_BLOCKS else b"\n"))
            f.write(b"]\n")
    return path


def sources(n: dict[str, int], ledger: Path, wanted: set[str]) -> list[Row]:
    """The same 100 MB dump read from a local file, through `cat |` and from S3 (moto's,
    in server mode, on this machine), into the same instant stand-in, one process each."""
    rows = []
    path, _ = dump("main", n["small"])
    print("9. where the dump lives: local file, pipe, S3", file=sys.stderr)
    target = "9 sources"
    common = ["--table", "t", "--new"]
    with standin() as s, contextlib.ExitStack() as stack:
        s3_url = ""
        if "s3" in wanted:
            sys.path.insert(0, str(ROOT / "tests"))
            import moto_server

            s3_url = stack.enter_context(moto_server.running())
            client = boto3.client(
                "s3", endpoint_url=s3_url, region_name="us-east-1",
                aws_access_key_id="bench", aws_secret_access_key="bench",
            )  # fmt: skip
            client.create_bucket(Bucket="bench")
            client.upload_file(str(path), "bench", path.name)

        def local() -> Child:
            return rimport("start", path, *common, "--endpoint", s.url, ledger=ledger,
                           reader_process=False)  # fmt: skip

        def pipe() -> Child:
            line = " ".join([
                "cat", str(path), "|", str(BIN / "rimport"), "start", "-", *common,
                "--endpoint", s.url,
            ])  # fmt: skip
            return run_child(["sh", "-c", line], RIMPORT_LEDGER=str(ledger),
                             RIMPORT_READER_PROCESS="0")  # fmt: skip

        def from_s3() -> Child:
            return run_child(
                [str(BIN / "rimport"), "start", f"s3://bench/{path.name}", *common,
                 "--endpoint", s.url],
                RIMPORT_LEDGER=str(ledger), RIMPORT_READER_PROCESS="0",
                AWS_ENDPOINT_URL_S3=s3_url,
            )  # fmt: skip

        scenarios = [("local file", local), ("pipe (cat |)", pipe), ("S3 (moto)", from_s3)]
        for scenario, work in scenarios:
            if scenario == "local file" or scenario.split()[0].lower() in wanted:
                rows.append(on_standin(target, scenario, s, "rimport", n["small"], work))
    return rows


def _logged(log: Path, event: str, field: str) -> float:
    """A figure of the last `event` in a run log (JSON lines)."""
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    return float([x for x in lines if x.get("event") == event][-1][field])


def via_staging(n: dict[str, int], tmp: Path) -> list[Row]:
    """The 100 MB dump read into the instant stand-in, and staged with `--via` to moto's
    S3 (in server mode, on this machine; ImportTable follows on the same moto, untimed):
    each rate over the run's own time in its log (from reading the first item to the end
    of writing, or of staging), one process each. Then the 2.5 GB dump's peak RSS through
    staging's two passes (`--dry-run`: spilled and deduplicated, not gzipped or uploaded,
    since moto's ImportTable of 2.5 million items would take hours). 200 objects of 500
    items: moto's ImportTable parses an object's lines recursively and fails ("maximum
    recursion depth exceeded") on one of 100,000; and of these objects it imports none
    (its parser reads nothing of the bench's items), which rimport rightly calls a failed
    run: the staging it times is done by then."""
    print("12. staging with --via", file=sys.stderr)
    path, _ = dump("main", n["small"])
    big, _ = dump("big", n["big"], mark=n["big"] * 9 // 10)
    sys.path.insert(0, str(ROOT / "tests"))
    import moto_server

    rows = []
    ledger, log = tmp / "via.sqlite", tmp / "via.log"
    with standin() as s, moto_server.running() as url:
        boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        ).create_bucket(Bucket="bench")  # fmt: skip
        env = {"RIMPORT_LEDGER": str(ledger), "RIMPORT_LOG": str(log),
               "RIMPORT_READER_PROCESS": "0", "AWS_ENDPOINT_URL_S3": url,
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        read = run_child([str(BIN / "rimport"), "start", str(path), "--table", "t", "--new",
                          "--endpoint", s.url, "--progress", "none"], **env)  # fmt: skip
        reading = _logged(log, "finished", "elapsed")
        rows.append(Row("12 via", "read into the instant stand-in", "rimport", n["small"],
                        reading, read.cpu, read.rss_kb, s.stats()["distinct_keys"]))  # fmt: skip
        # exit code 1: moto's ImportTable imports none of these items (see above)
        staged = run_child([str(BIN / "rimport"), "start", str(path), "--table", "via",
                            "--via", "s3://bench/via/", "--via-objects", "200",
                            "--create-table", "--key", "pk:S",
                            "--endpoint", url, "--progress", "none"],
                           (0, 1), **env)  # fmt: skip
        seconds = _logged(log, "staged_all", "seconds")
        rows.append(Row("12 via", "staged to moto's S3", "rimport --via", n["small"], seconds,
                        staged.cpu, staged.rss_kb, "-"))  # fmt: skip
    planned = run_child([str(BIN / "rimport"), "start", str(big), "--table", "big", "--via",
                         "s3://bench/big/", "--create-table", "--key", "pk:S", "--dry-run"],
                        RIMPORT_LEDGER=str(ledger))  # fmt: skip
    rows.append(Row("12 via", f"{big.stat().st_size / 1e9:.1f} GB dump, --dry-run",
                    "rimport --via", n["big"], planned.seconds, planned.cpu, planned.rss_kb,
                    "-"))  # fmt: skip
    return rows


def empty_dump(items: int) -> Path:
    """A cached JSON array of `items` empty objects: items without a key, refused one by one."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"empty-{items}.json"
    if not path.exists():
        path.write_bytes(b"[\n" + b",\n".join([b"{}"] * items) + b"\n]\n")
    return path


def print_report(
    rows: list[Row],
    limit: float,
    resume: dict[str, tuple[float, float]],
    commit_us: float,
    throttled: dict[str, tuple[int, int]],
    big_size: int,
    ledgers: dict[str, tuple[int, int]],
    units: dict[str, float],
) -> None:
    print("| target | scenario | tool | items | items/s | CPU µs/item | peak RSS MB | verified |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        cpu = f"{r.cpu_per_item:,.0f}" if r.cpu else "-"
        rss = f"{r.rss_kb / 1024:,.0f}" if r.rss_kb else "-"
        print(
            f"| {r.target} | {r.scenario} | {r.tool} | {r.items:,} | {r.rate:,.0f} | {cpu} | {rss} "
            f"| {r.verified if isinstance(r.verified, str) else f'{r.verified:,}'} |"
        )

    def get(target: str, tool: str) -> Row | None:
        return next((r for r in rows if r.target == target and r.tool.startswith(tool)), None)

    for scenario in ("instant stand-in", "10 ms per request"):
        pool = [r for r in rows if r.target == "13 workers" and r.scenario == scenario]
        if pool:
            one = max((r for r in pool if "--workers 1" in r.tool), key=lambda r: r.rate)
            two = max((r for r in pool if "--workers 2" in r.tool), key=lambda r: r.rate)
            print(
                f"\n13. {scenario}: {two.rate:,.0f} items/s with {two.tool} against "
                f"{one.rate:,.0f} with {one.tool} ({two.rate / one.rate:.2f}x; target "
                f"40,000 at 10 ms); largest process {two.rss_kb / 1024:,.0f} MB (target 100)"
            )
    via = [r for r in rows if r.target == "12 via"]
    if len(via) == 3:
        print(
            f"\n12. --via: staging the 100 MB dump to moto's S3 at {via[1].rate:,.0f} items/s = "
            f"{100 * via[1].rate / via[0].rate:.0f}% of reading it into the instant stand-in "
            f"({via[0].rate:,.0f} items/s; target 70%); peak RSS on the 2.5 GB dump "
            f"{via[2].rss_kb / 1024:,.0f} MB (target 150)"
        )

    print()
    ours, base = get("1 client cost", "rimport,"), get("1 client cost", "boto3 client")
    split = get("1 client cost", "rimport +")
    if ours and base:
        print(
            f"1. client CPU: {ours.cpu_per_item:.0f} µs/item in one process (target 30), "
            f"{base.cpu_per_item / ours.cpu_per_item:.1f}x less than the sequential boto3 "
            f"client ({base.cpu_per_item:.0f} µs/item; target 12x)"
        )
    if ours and split:
        print(
            f"   with the reader process: {split.cpu_per_item:.0f} µs/item over both processes, "
            f"{split.rate:,.0f} items/s against {ours.rate:,.0f} in one process"
        )
    if ddb := get("2 DynamoDB Local", "rimport"):
        print(
            f"2. DynamoDB Local: {ddb.rate:,.0f} items/s = {100 * ddb.rate / limit:.0f}% of the "
            f"server's ceiling measured in this run ({limit:,.0f} items/s; target 90%)"
        )
    latencies = [r for r in rows if r.target == "3 latency" and r.tool.startswith("rimport")]
    if latencies:
        best = max(latencies, key=lambda r: r.rate)
        lat = next((r for r in latencies if "default" in r.tool), best)
        print(
            f"3. 10 ms latency: {lat.rate:,.0f} items/s with {lat.tool} (target 40,000 with "
            f"the default settings); "
            f"{lat.items / lat.writing:,.0f} items/s from its first write to its last (the "
            f"process takes {lat.seconds - lat.writing:.1f} s to start, hash the dump and stop)"
        )
        if best is not lat:
            print(f"   the fastest: {best.rate:,.0f} items/s with {best.tool}")
    memory = [r for r in rows if r.target == "4 memory"]
    if memory:
        small, big = memory
        print(
            f"4. memory: peak RSS {big.rss_kb / 1024:.0f} MB on {big_size / 1e9:.1f} GB / "
            f"{big.items:,} items, "
            f"{small.rss_kb / 1024:.0f} MB on 100 MB (target 100 MB, flat)"
        )
    for shape, (first, hashing) in resume.items():
        print(
            f"5. resume at 90% ({shape}): first write after {first:.2f} s, of which checking "
            f"the file's block hashes takes about {hashing:.2f} s (target 3 s)"
        )
    if ours:
        print(
            f"6. checkpoint: {commit_us:.0f} µs CPU per batch commit = {commit_us / 25:.1f} "
            f"µs/item = {100 * commit_us / 25 / ours.cpu_per_item:.1f}% of rimport's CPU per "
            "item (target 5%)"
        )
    for tool, (t, total) in throttled.items():
        print(f"7. throttling, {tool}: {t:,} of {total:,} requests throttled")
    local = next((r for r in rows if r.target == "9 sources" and r.scenario == "local file"), None)
    for r in rows:
        if local and r.target == "9 sources" and r is not local:
            print(
                f"9. {r.scenario}: {r.rate:,.0f} items/s = {100 * r.rate / local.rate:.0f}% of "
                f"the local file's {local.rate:,.0f} (target 70%); peak RSS "
                f"{r.rss_kb / 1024:,.0f} MB against {local.rss_kb / 1024:,.0f} MB"
            )
    for r in rows:
        if r.target == "10 refused between good":
            print(
                f"10. {r.scenario}, 2 s answers: peak RSS {r.rss_kb / 1024:,.0f} MB (target "
                f"100), {r.seconds:,.0f} s"
            )
    for r in rows:
        if r.target == "8 refused items":
            ledger, log = ledgers[r.scenario]
            print(
                f"8. refused items, {r.scenario}: peak RSS {r.rss_kb / 1024:,.0f} MB (target "
                f"100), {r.rate:,.0f} items/s, {r.verified:,} of {r.items:,} items "
                f"dead-lettered; after the run the ledger holds {ledger / 1e6:,.1f} MB and the "
                f"log {log / 1e6:,.1f} MB"
            )
    imported = next((r for r in rows if r.target == "11 verify" and r.scenario == "import"), None)
    for r in rows:
        if imported and r.target == "11 verify" and r is not imported:
            method = r.tool.rsplit(" ", 1)[-1]
            print(
                f"11. {r.scenario}: {r.seconds:,.1f} s = {r.seconds / imported.seconds:.2f}x the "
                f"import's {imported.seconds:,.1f} s (target 2x), {units[method]:,.1f} read "
                f"units, peak RSS {r.rss_kb / 1024:,.0f} MB (the import's "
                f"{imported.rss_kb / 1024:,.0f} MB); {r.verified:,} of {r.items:,} identical"
            )


if __name__ == "__main__":
    main()
