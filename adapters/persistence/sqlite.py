"""The SQLite event store with its hash chain: ``PERSISTENCE_MODULE=adapters.persistence.sqlite``.

The library's application recorder assigns each event its position (the ``rowid``) as it
inserts it; this one then reads the chain's head and appends one chain row per event, in
the same transaction. The head is read after the first insert, when the transaction
already holds SQLite's write lock: no other connection or process can append meanwhile, so
the previous chain hash is the one just before these positions, whoever wrote it.

When the chain table is first created on a store that already holds events, the chain is
computed for that whole history at once, in the same transaction that creates the table:
history before the upgrade is sealed as found.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any
from uuid import UUID

from eventsourcing import sqlite as es_sqlite
from eventsourcing.persistence import OperationalError, StoredEvent

from adapters.persistence import writelock
from adapters.persistence.chain import GENESIS, chain_rows, links_after
from adapters.persistence.writelock import WriterLock

# Table names in SQL text (S608) come from the library's recorder settings, never from input.

#: Rows read at a time while the chain of an existing history is computed.
_HISTORY_PAGE = 20_000


def chain_table_of(events_table_name: str) -> str:
    """The chain table beside an events table."""
    return f"{events_table_name}_chain"


class _ImmediateTransaction(es_sqlite.SQLiteTransaction):
    """``BEGIN IMMEDIATE``: take the write lock before reading, so what was read cannot go stale.

    Creating the chain table reads whether it exists and then writes; a deferred transaction
    would fail outright (not wait) if another process wrote in between.
    """

    def __enter__(self) -> es_sqlite.SQLiteCursor:
        cursor = self.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise OperationalError(error) from error
        return cursor


class ChainedSQLiteApplicationRecorder(es_sqlite.SQLiteApplicationRecorder):
    """The library's SQLite application recorder, writing a chain row with every event."""

    def __init__(self, datastore: es_sqlite.SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        # Set before the library builds its create statements, which include the chain table's.
        self.chain_table_name = chain_table_of(events_table_name)
        super().__init__(datastore, events_table_name)
        self.select_chain_head_statement = (
            f"SELECT position, chain_hash FROM {self.chain_table_name} ORDER BY position DESC LIMIT 1"  # noqa: S608
        )
        self.insert_chain_statement = (
            f"INSERT INTO {self.chain_table_name} (position, event_hash, chain_hash) VALUES (?, ?, ?)"  # noqa: S608
        )
        self.select_position_statement = (
            f"SELECT rowid FROM {self.events_table_name} WHERE originator_id = ? AND originator_version = ?"  # noqa: S608
        )

    def construct_create_table_statements(self) -> list[str]:
        """The events table, and the chain table keyed by position."""
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.chain_table_name} ("
            "position INTEGER PRIMARY KEY, "
            "event_hash BLOB NOT NULL, "
            "chain_hash BLOB NOT NULL)"
        )
        return statements

    def create_table(self) -> None:
        """Create the tables (and the chain of an existing history) under the write lock."""
        with (
            self.datastore.get_connection(commit=True) as conn,
            _ImmediateTransaction(conn, commit=True) as cursor,
            cursor,
        ):
            self._create_table(cursor)

    def _create_table(self, c: es_sqlite.SQLiteCursor) -> None:
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.chain_table_name,))
        existed = c.fetchone() is not None
        super()._create_table(c)
        if not existed:
            self._chain_history(c)

    def _chain_history(self, c: es_sqlite.SQLiteCursor) -> None:
        """Chain every event already stored, in position order (the upgrade of an older store)."""
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "  # noqa: S608
            "WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        previous, after = GENESIS, 0
        while True:
            c.execute(statement, (after, _HISTORY_PAGE))
            rows = [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in c.fetchall()]
            if not rows:
                return
            chained = chain_rows(previous, rows)
            c.executemany(self.insert_chain_statement, chained)
            after, previous = chained[-1][0], chained[-1][2]

    def _insert_events(
        self, c: es_sqlite.SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = self._insert_all(c, stored_events) if len(stored_events) > 1 else super()._insert_events(
            c, stored_events, **kwargs
        )
        if positions:
            self._extend_chain(c, stored_events, positions)
        return positions

    def _insert_all(self, c: es_sqlite.SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the events in one statement and return their positions.

        The library inserts one row per call to learn each row's position. SQLite gives each
        new row the position after the largest in the table, and this transaction holds the
        write lock, so the rows of one statement take consecutive positions, ending at
        ``last_insert_rowid()``. The first row's position is read back to be sure: should it
        not be where it must (a table whose positions ran out at 2^63 is given random ones),
        the transaction fails rather than record wrong positions.
        """
        rows = [
            (s.originator_id.hex if type(s.originator_id) is UUID else s.originator_id, s.originator_version, s.topic,
             s.state)
            for s in stored_events
        ]
        c.executemany(self.insert_events_statement, rows)
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        start = last - len(rows) + 1
        c.execute(self.select_position_statement, rows[0][:2])
        row = c.fetchone()
        if row is None or int(row[0]) != start:
            raise OperationalError(f"the positions of the events just inserted are not consecutive (ending at {last})")
        return list(range(start, last + 1))

    def _extend_chain(
        self, c: es_sqlite.SQLiteCursor, stored_events: Sequence[StoredEvent], positions: Sequence[int]
    ) -> None:
        # The inserts above hold the write lock: the head read here is the latest, and stays so.
        c.execute(self.select_chain_head_statement)
        head = c.fetchone()
        # SQLite reuses the rowid of a deleted last row: a position already chained means the
        # log's head was removed.
        chained = links_after(
            (int(head[0]), bytes(head[1])) if head else None, positions, stored_events,
            tampered="stored events were removed",
        )
        c.executemany(self.insert_chain_statement, chained)

    def chain_head(self) -> tuple[int, bytes] | None:
        """The last chained position and its chain hash (None: nothing chained yet)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.select_chain_head_statement)
            head = c.fetchone()
        return (int(head[0]), bytes(head[1])) if head else None


class SessionSQLiteDatastore(es_sqlite.SQLiteDatastore):
    """The library's datastore, whose reads can share one connection and one read transaction.

    Deciding a batch of commands reads many aggregates one by one; each read of the library
    takes a pooled connection, begins, selects, rolls back and gives the connection back. In
    :meth:`reading`, every read of the thread (``transaction(commit=False)``) runs on one
    cursor in one read transaction instead: one snapshot, a fraction of the calls. Writes are
    untouched (the pool's writer connection, as always). A memory database, whose pool makes
    readers and the writer exclude each other, reads as before.
    """

    _sessions: threading.local

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Reads of this thread share one read transaction until the block ends (nested: the outer one)."""
        sessions = self.__dict__.setdefault("_sessions", threading.local())
        if getattr(sessions, "cursor", None) is not None or self.pool.is_sqlite_memory_mode:
            yield
            return
        with super().transaction(commit=False) as cursor:
            sessions.cursor = cursor
            try:
                yield
            finally:
                sessions.cursor = None

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[es_sqlite.SQLiteCursor]:
        """The library's transaction; a read inside :meth:`reading` runs on the session's cursor,
        a write holds the file's :class:`~adapters.persistence.writelock.WriterLock` throughout."""
        sessions = self.__dict__.get("_sessions")
        cursor = None if commit or sessions is None else getattr(sessions, "cursor", None)
        if cursor is not None:
            yield cursor
            return
        with writelock.held(self.writer_lock if commit else None), super().transaction(commit=commit) as fresh:
            yield fresh

    @cached_property
    def writer_lock(self) -> WriterLock | None:
        """The lock every writer of this file takes (None for a memory database)."""
        return WriterLock.beside(self.pool.db_name)


class ChainedSQLiteFactory(es_sqlite.SQLiteFactory):
    """The library's SQLite factory with the chained application recorder (the only factory here)."""

    application_recorder_class = ChainedSQLiteApplicationRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The library builds its own datastore from the environment; this one only adds
        # methods (and a thread-local made on first use), so the built object is kept as it is.
        self.datastore.__class__ = SessionSQLiteDatastore
