"""Time and memory budgets: for one page of a PDF, and for a whole worker process.

A PDF is a program: a 400 KB file can inflate to gigabytes when its page is drawn, and a 61 KB content
stream can keep a parser busy for minutes. Neither PDFium nor pdfminer can be told to stop, so each page is
read in a child process (forked, so it starts warm and costs milliseconds) whose address space is capped with
RLIMIT_AS and which is killed when the page takes too long. A page over its budget is one page error; the
child is replaced and the rest of the file goes on.

The worker limit is the same cap on the rq work horse (the process that runs one job): whatever a file does,
one job can never take more than `worker_memory_mb` of the machine, and the worker that forked it goes on to
the next job.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import multiprocessing
import resource
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Generic, Literal, TypeVar

log = logging.getLogger(__name__)
MB = 1024 * 1024
State = TypeVar("State")
Result = TypeVar("Result")


def address_space_bytes() -> int:
    """This process's current virtual size (VmSize): what RLIMIT_AS is measured against."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def limit_address_space(limit_bytes: int) -> None:
    """Cap this process's address space (soft limit; never above an existing hard limit). 0 = no cap."""
    if limit_bytes <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


def limit_worker_memory(limit_mb: int) -> None:
    """The per-job cap of an rq work horse (called in the forked work horse, so the worker itself is unaffected)."""
    if limit_mb > 0:
        limit_address_space(limit_mb * MB)
        log.info("job memory limited to %d MB of address space", limit_mb)


@dataclass(frozen=True)
class Budget:
    seconds: float  # 0 = no time limit
    memory_mb: int  # address space a page may add on top of what the reading process already holds; 0 = none


@dataclass(frozen=True)
class Overrun:
    """A page that did not finish within its budget."""

    kind: Literal["time", "memory", "crash"]


def _serve(conn: Connection, opener: Callable[[], Any], reader: Callable[[Any, int], Any], extra_bytes: int) -> None:
    # A page over budget ends this process by design (PDFium aborts when an allocation fails): no stack dump.
    faulthandler.disable()
    # Measured after the fork: the child shares the parent's pages, and only what it adds counts.
    if extra_bytes > 0:
        limit_address_space(address_space_bytes() + extra_bytes)
    state = None
    while True:
        index = conn.recv()
        if index is None:
            return
        try:
            if state is None:
                state = opener()
            conn.send(("ok", reader(state, index)))
        except MemoryError:
            conn.send(("memory", None))
            return  # the heap may be in pieces: a fresh child reads the next page
        except Exception as exc:
            log.warning("page %s: reader failed: %s: %s", index, type(exc).__name__, exc)
            conn.send(("crash", None))
            return


class PageReader(Generic[State, Result]):
    """Pages of one document read one at a time in a budgeted child process.

    `opener()` runs in the child and returns what `reader(state, index)` needs (an open document); the
    child is replaced after `reopen_every` pages so nothing a parser caches outlives a few pages, and after
    any overrun.
    """

    def __init__(self, opener: Callable[[], State], reader: Callable[[State, int], Result], budget: Budget,
                 reopen_every: int = 25) -> None:
        self.opener, self.reader, self.budget, self.reopen_every = opener, reader, budget, reopen_every
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._served = 0

    def _start(self) -> Connection:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.opener, self.reader, self.budget.memory_mb * MB),
                           daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn, self._served = proc, parent, 0
        return parent

    def read(self, index: int) -> Result | Overrun:
        if self._conn is not None and self._served >= self.reopen_every:
            self.close()
        conn = self._conn or self._start()
        self._served += 1
        try:
            conn.send(index)
            if not conn.poll(self.budget.seconds if self.budget.seconds > 0 else None):
                self._kill()
                return Overrun("time")
            status, value = conn.recv()
        except (EOFError, OSError):
            # The child died: out of address space inside PDFium (which aborts rather than fail an allocation)
            # or killed by the system. Either way this page cannot be read within the budget.
            code = self._kill()
            log.warning("page %s: reader process died (exit %s)", index, code)
            return Overrun("memory" if code is None or code < 0 or code == 1 else "crash")
        if status != "ok":
            self._kill()
            return Overrun("memory" if status == "memory" else "crash")
        return value

    def _kill(self) -> int | None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        return proc.exitcode

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            if self._proc is not None:
                self._proc.join(2)
        self._kill()

    def __enter__(self) -> PageReader[State, Result]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
