"""Group commit for requests: concurrent commands share one transaction, each gets its own answer.

A request hands its command to :meth:`GroupCommitter.submit` and awaits the answer; one writer
thread takes whatever commands are waiting (at most ``max_batch``) and runs them through
:meth:`PingjingApp.execute_batch` in one transaction. Each command is still decided alone (a bad
one gets its own error and sinks nothing else), and each request is answered only after the
transaction holding its events is durable. There is no waiting to fill a batch: while one
transaction commits, the next requests queue up, so batches grow exactly as load does and a
lone request is written at once.

On SQLite this also makes the one writer the only writer of the process, so requests never
wait on each other's locks; on PostgreSQL the same code saves round trips and commits.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import structlog

from domain import commands as c
from domain.application import Context, Outcome, PingjingApp
from domain.errors import PingjingError
from domain.usecases import Receipt

log = structlog.get_logger("pingjing.http")


@dataclass(frozen=True)
class _Item:
    command: c.Command
    context: Context
    answer: Future[Outcome]


class GroupCommitter:
    """One writer thread committing the commands requests hand it, in batches."""

    def __init__(self, app: PingjingApp, *, max_batch: int = 256) -> None:
        self.app = app
        self.max_batch = max_batch
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        #: Batches written and commands in them (for metrics and tests).
        self.batches = 0
        self.commands = 0

    def start(self) -> None:
        """Start the writer thread (once; also started by the first :meth:`submit`)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the group committer was stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pingjing-group-commit", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Write what was handed in, then stop the thread."""
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    async def submit(self, command: c.Command, context: Context) -> Receipt:
        """The command's receipt once its transaction is durable; its domain error if it was refused."""
        if self._thread is None:
            self.start()
        answer: Future[Outcome] = Future()
        self._queue.put(_Item(command, context, answer))
        outcome = await asyncio.wrap_future(answer)
        if isinstance(outcome, PingjingError):
            raise outcome
        return outcome

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[_Item]) -> bool:
        """Write a batch; False when the store failed (every command waiting then heard the error)."""
        try:
            outcomes = self.app.execute_batch([(item.command, item.context) for item in batch])
        except Exception as error:  # noqa: BLE001 - the store failed: every waiting request hears it
            # What queued up meanwhile would wait for the same unreachable store: it is answered
            # with the same error now rather than after another wait of its own.
            waiting = self._drain()
            log.error("group_commit_failed", commands=len(batch) + len(waiting), error=type(error).__name__)
            for item in (*batch, *waiting):
                item.answer.set_exception(error)
            return False
        self.batches += 1
        self.commands += len(batch)
        for item, outcome in zip(batch, outcomes, strict=True):
            item.answer.set_result(outcome)
        return True

    def _drain(self) -> list[_Item]:
        """Everything queued now (a stop request stays queued for the loop to see)."""
        items: list[_Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if item is None:
                self._queue.put(None)
                return items
            items.append(item)
