"""One writer at a time on a SQLite file, across processes, handed over at once.

SQLite lets one connection write a database at a time. A connection that finds it locked
sleeps and tries again, on a schedule of its own (1, 2, 5, 10, 15, 20, 25 ms ...), and
between two tries a third writer may take the lock first. Several processes writing one file
(``serve --workers N``, ``projections run``, ``scheduler run``) then wait longer than the
writes take, and unevenly: the slowest requests are those whose writer lost the race twice.

Every write transaction of the event store (:class:`~adapters.persistence.sqlite.SessionSQLiteDatastore`)
and of the citizens' key table first takes :class:`WriterLock`: an exclusive ``flock`` on a
file beside the database (``NAME-writer.lock``). The kernel queues the waiting processes and
wakes the next one the moment the lock is let go, and the interpreter is free meanwhile.
A ``flock`` belongs to an open file, which all threads of a process share, so a lock of the
thread kind keeps the process's own writers in line first; a thread's nested write takes
the file lock once. A program that does not take this lock (the ``sqlite3`` shell, say) is
still kept out by SQLite's own lock, as before. The lock file is opened for each write and
closed after it, so nothing stays open between writes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import ClassVar


class WriterLock:
    """The lock beside one database file, one object per file in a process."""

    _registry: ClassVar[dict[str, WriterLock]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def beside(cls, database: str | Path) -> WriterLock | None:
        """The lock of the SQLite file ``database``; None for a memory database."""
        name = str(database)
        if name in {"", ":memory:"} or "mode=memory" in name:
            return None
        target = Path(name.removeprefix("file:").split("?", 1)[0]).resolve()
        lock_path = target.with_name(target.name + "-writer.lock")
        with cls._registry_lock:
            lock = cls._registry.get(str(lock_path))
            if lock is None:
                lock = cls._registry[str(lock_path)] = cls(lock_path)
            return lock

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for a write transaction (this thread's nested writes take it once)."""
        with self._thread_lock:
            self._depth += 1
            try:
                locked = self._depth == 1 and self._lock_file()
                try:
                    yield
                finally:
                    if locked:
                        self._let_go()
            finally:
                self._depth -= 1

    def _lock_file(self) -> bool:
        """Take the file lock; False when the lock file cannot be had (a read-only or full file
        system): the write then goes on under SQLite's own lock alone, and fails there with the
        store's own error if it cannot be written either."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _let_go(self) -> None:
        # Closing the file lets the lock go; nothing stays open between writes (a file open for
        # writing would keep its file system from being remounted read-only, say).
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _after_fork(self) -> None:
        # A descriptor inherited in the middle of a write is the parent's open file, and so its
        # lock: close this copy (the parent keeps its own, and the lock with it).
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._depth = 0
        self._thread_lock = threading.RLock()

    @classmethod
    def _forget_all_after_fork(cls) -> None:
        cls._registry_lock = threading.Lock()
        for lock in cls._registry.values():
            lock._after_fork()


def held(lock: WriterLock | None) -> AbstractContextManager[None]:
    """``lock`` held for a write transaction; nothing to hold for a memory database (None)."""
    return lock.held() if lock is not None else nullcontext()


os.register_at_fork(after_in_child=WriterLock._forget_all_after_fork)
