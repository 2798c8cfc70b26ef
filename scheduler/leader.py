"""One scheduler leads at a time: a PostgreSQL advisory lock, or a file lock beside a SQLite store.

Both locks belong to a live connection or open file: when the leader dies, the server
or the kernel releases them, and a follower waiting for the lock takes over.
"""

from __future__ import annotations

import fcntl
import zlib
from pathlib import Path
from typing import Any, Protocol

import psycopg

from adapters.store import connect_postgres

LOCK_NAME = "pingjing.scheduler"


class Leadership(Protocol):
    """A lock that at most one process holds."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process now leads."""
        ...

    def release(self) -> None:
        """Give the lock up."""
        ...


class FileLeadership:
    """An exclusive ``flock`` on a file beside the SQLite store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def try_acquire(self) -> bool:
        """Lock the file without waiting."""
        if self._file is not None:
            return True
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Unlock and close."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class PostgresLeadership:
    """A session-level advisory lock on a connection kept open while leading."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.key = zlib.crc32(f"{LOCK_NAME}:{env.get('POSTGRES_SCHEMA', 'public')}".encode())
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        """``pg_try_advisory_lock``; the connection stays open while this process leads."""
        if self._conn is not None and not self._conn.closed:
            return True
        conn = connect_postgres(self.env)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        """Closing the session releases the lock."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
