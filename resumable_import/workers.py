"""The second `BatchWriter`: N writer processes, each item routed by the hash of its key.

One process converts and checks items at some 40-60 µs each, and writing them (framing,
signing, the HTTP exchange, the answers) is about half of that: past one core, the run's
process keeps reading and committing, and hands the writing to `--workers N` processes,
each a `Writer` with its own connections and flow control. An item goes to the process
its key's hash names, so one key always goes to one process: with the run loop's rule
that no two unfinished jobs share a key, the later item of a key is still the one that
stays. Items are gathered per process into requests of up to 25 (a job's 25 items are
spread over all of them), and a job is acknowledged once every process answered for each
of its items: the checkpoint, which the run loop moves in file order, stays a gapless
prefix of the file.

The table is one for all of them: the WCU cap is split evenly (the hash spreads items
evenly), and a process that is throttled has the others slow down as if they had been.
A process that dies is noticed at once (its sentinel), and the run stops resumably at its
last checkpoint, naming it. Each process builds its own client from the endpoint, region
and profile (credentials are resolved there, never passed), ignores Ctrl-C (the run stops
it), and exits when the run's end of its pipe closes, however the run ended.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import selectors
import signal
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from .errors import RimportError, ServiceError
from .keys import Key
from .ledger import Run
from .options import WriteSettings
from .transport import Transport
from .writer import BatchWriter, Failure, Job, OutageHook, RetryHook, RetryPolicy, Writer

STOP_WAIT = 5.0  # seconds a process is given to finish after it is told to stop


@dataclass(frozen=True)
class WriterSpec:
    """What a writer process needs to write as the run does: picklable, and no secret."""

    endpoint: str
    region: str
    profile: str | None
    table: str
    key_names: tuple[str, ...]
    policy: RetryPolicy
    max_inflight: int
    max_wcu: float | None  # this process's share of the run's cap
    entries: bool


class ProcessWriter:
    """`BatchWriter` over `workers` processes (see the module docstring)."""

    def __init__(
        self,
        workers: int,
        spec: WriterSpec,
        *,
        batch_size: int = 25,
        on_retry: RetryHook | None = None,
        on_outage: OutageHook | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no sockets or threads inherited
        self._batch_size = batch_size
        self._on_retry = on_retry
        self._on_outage = on_outage
        self._pipes: list[Connection] = []
        self._processes: list[Any] = []
        share = None if spec.max_wcu is None else spec.max_wcu / workers
        for n in range(workers):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, replace(spec, max_wcu=share)), daemon=True,
                name=f"rimport-writer-{n + 1}",
            )  # fmt: skip
            process.start()
            theirs.close()
            self._pipes.append(mine)
            self._processes.append(process)
        self._selector = selectors.DefaultSelector()  # one for the run: made once
        for n, (pipe, process) in enumerate(zip(self._pipes, self._processes, strict=True)):
            self._selector.register(pipe, selectors.EVENT_READ, ("pipe", n))
            self._selector.register(process.sentinel, selectors.EVENT_READ, ("process", n))
        self._buffers: list[list[tuple[Job, int]]] = [[] for _ in range(workers)]
        self._open: dict[int, list[tuple[Job, int]]] = {}  # each item's job and position
        self._ids = 0
        self._throttled = [0] * workers
        self._paces: list[float | None] = [None] * workers

    @property
    def throttled(self) -> int:
        return sum(self._throttled)

    @property
    def pace(self) -> float | None:
        paces = [p for p in self._paces if p is not None]
        return sum(paces) if paces else None

    @property
    def paces(self) -> list[float | None]:
        """Each process's pace, as it last said: None until it or another was throttled."""
        return list(self._paces)

    def submit(
        self, items: list[bytes], keys: list[Key | None], units: list[int] | None = None
    ) -> Job:
        job = Job(items, keys, units=units)
        job.parts = len(items)  # items not yet answered for
        workers, buffers = len(self._pipes), self._buffers
        for position, key in enumerate(keys):
            # The key's hash in this process (keys compare and hash as DynamoDB's do, and
            # only this process routes): one key, one writer, for the whole run.
            worker = hash(key) % workers
            buffer = buffers[worker]
            buffer.append((job, position))
            if len(buffer) >= self._batch_size:
                self._send(worker)
        return job

    def poll(self, *, block: bool) -> None:
        if block:
            for worker, buffer in enumerate(self._buffers):
                if buffer:
                    self._send(worker)
            if not self._open:
                return
        ready = self._selector.select(None if block else 0)
        for key, _ in ready:
            if key.data[0] == "pipe":
                self._take(key.data[1])
        for key, _ in ready:
            if key.data[0] == "process":
                self._died(key.data[1])

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self._processes:
            process.join(STOP_WAIT)
            if process.is_alive():
                process.terminate()
                process.join()
        self._selector.close()
        for pipe in self._pipes:
            pipe.close()

    def _send(self, worker: int) -> None:
        slots, self._buffers[worker] = self._buffers[worker], []
        self._ids += 1
        self._open[self._ids] = slots
        items = [job.items[p] for job, p in slots]
        keys = [job.keys[p] for job, p in slots]
        units = [job.units[p] for job, p in slots] if slots[0][0].units else None
        try:
            self._pipes[worker].send(("write", self._ids, items, keys, units))
        except OSError:
            self._died(worker)

    def _take(self, worker: int) -> None:
        """Everything the process has said so far."""
        pipe = self._pipes[worker]
        try:
            while pipe.poll(0):
                self._told(worker, pipe.recv())
        except (EOFError, OSError):
            self._died(worker)

    def _told(self, worker: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            _, number, failures, retries, throttled, pace = message
            slots = self._open.pop(number)
            for position, code, text, attempts, retryable in failures:
                job, at = slots[position]
                job.failures.append(Failure(at, code, text, attempts, retryable))
            for job, _ in slots:
                job.parts -= 1
            for retry in retries:
                if self._on_retry:
                    self._on_retry(*retry)
            if throttled > self._throttled[worker]:  # the table's limit is everyone's
                for other, pipe in enumerate(self._pipes):
                    if other != worker:
                        with contextlib.suppress(OSError):
                            pipe.send(("slow",))
            self._throttled[worker], self._paces[worker] = throttled, pace
        elif kind == "outage":
            if self._on_outage:
                self._on_outage(message[1], message[2])
        elif kind == "error":  # what stopped the process stops the run
            raise message[1]

    def _died(self, worker: int) -> None:
        process = self._processes[worker]
        process.join(1.0)
        code = process.exitcode
        how = (
            f"was killed by signal {-code}" if code is not None and code < 0
            else f"exited with code {code}" if code is not None else "stopped answering"
        )  # fmt: skip
        raise ServiceError(
            f"writer process {worker + 1} of {len(self._processes)} (pid {process.pid}) "
            f"{how}; what it was writing after the last checkpoint is written again on resume",
            "nothing committed is lost",
        )


def _serve(pipe: Connection, spec: WriterSpec) -> None:
    """A writer process: take requests from the pipe, write them, say how each went."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the run, which stops us
    try:
        writer, retries = _writer(pipe, spec)
    except RimportError as e:
        _say(pipe, ("error", e))
        return
    jobs: dict[int, Job] = {}
    try:
        while True:
            while pipe.poll(0) if jobs else pipe.poll(None):
                message = pipe.recv()
                if message is None:
                    return
                if message[0] == "slow":
                    writer.slow_down()
                else:
                    _, number, items, keys, units = message
                    jobs[number] = writer.submit(items, keys, units)
            writer.poll(block=True)  # returns on an answer, a retry due, or the pipe
            for number in [n for n, job in jobs.items() if job.done]:
                job = jobs.pop(number)
                failures = [(f.position, f.code, f.message, f.attempts, f.retryable)
                            for f in job.failures]  # fmt: skip
                said, retries[:] = list(retries), []
                pipe.send(("done", number, failures, said, writer.throttled, writer.pace))
    except RimportError as e:
        _say(pipe, ("error", e))
    except (EOFError, OSError):  # the run is gone: nothing to say it to
        return
    finally:
        writer.close()


def _writer(pipe: Connection, spec: WriterSpec) -> tuple[Any, list[tuple[str, int, float]]]:
    from .dynamo import connect
    from .transport import open_transport

    conn = connect(spec.endpoint, spec.region, profile=spec.profile)
    transport = open_transport(conn.client, conn.credentials)
    transport.wake_on(pipe)
    retries: list[tuple[str, int, float]] = []
    writer = Writer(
        transport, spec.table, spec.key_names, spec.policy, max_inflight=spec.max_inflight,
        max_wcu=spec.max_wcu, on_retry=lambda *r: retries.append(r),
        on_outage=lambda since, cause: _say(pipe, ("outage", since, cause)),
        sleep=lambda seconds: pipe.poll(seconds), entries=spec.entries,
    )  # fmt: skip
    return writer, retries


def _say(pipe: Connection, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):
        pipe.send(message)


def default_workers(loopback: bool) -> int:
    """One process per two cores beyond the first, for a remote endpoint; one for a local
    one, whose server shares the machine's cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 1 if loopback else max(1, min(8, ((cores or 1) - 1) // 2))


def writer_for(
    run: Run, transport: Transport, key_names: tuple[str, ...], retry: RetryPolicy | None, *,
    entries: bool, on_retry: RetryHook, on_outage: OutageHook, profile: str | None,
    shared_client: bool,
) -> BatchWriter:  # fmt: skip
    """The run's writer: `Writer` in this process for one worker (or a client the caller
    gave, which no other process can use), else `ProcessWriter`."""
    s = run.settings
    workers = s.workers or 1  # a run recorded before writer processes ran with one
    if workers > 1 and not shared_client:
        transport.close()  # each process opens its own
        spec = WriterSpec(run.endpoint, run.region, profile, run.table, key_names,
                          retry or RetryPolicy(), s.concurrency, s.max_wcu, entries)  # fmt: skip
        return ProcessWriter(workers, spec, batch_size=s.batch_size, on_retry=on_retry,
                             on_outage=on_outage)  # fmt: skip
    return Writer(transport, run.table, key_names, retry, max_inflight=s.concurrency,
                  max_wcu=s.max_wcu, on_retry=on_retry, on_outage=on_outage,
                  entries=entries)  # fmt: skip


def settled(settings: WriteSettings, loopback: bool) -> WriteSettings:
    """The settings with the number of writer processes decided, as the run records it."""
    if settings.workers is not None:
        return settings
    return replace(settings, workers=default_workers(loopback))
