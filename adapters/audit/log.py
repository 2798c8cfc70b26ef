"""Reading a store's events and chain rows with plain SQL, in one consistent snapshot.

``audit verify`` must see the events and the chain as of one moment (a writer appending
meanwhile must not look like a row with no chain row), and it must be fast: it reads with
its own connection, rows as plain tuples, no decoding. A SQLite file is read in one read
transaction (WAL gives it a snapshot while writers go on); PostgreSQL in one REPEATABLE
READ, READ ONLY transaction with server-side cursors.

The readers work on a store's location, not on a running application, so that a backup
file or a restore candidate can be checked before anything opens it for writing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.sql import SQL, Composed, Identifier

from adapters.persistence.chain import id_text
from adapters.persistence.postgres import ChainedPostgresApplicationRecorder
from adapters.persistence.sqlite import ChainedSQLiteApplicationRecorder, chain_table_of
from domain.application import PingjingApp

#: A stored event: position, originator id (as hashed), version, topic, state.
EventRow = tuple[int, str, int, str, bytes]
#: A chain row: position, event hash, chain hash.
ChainRow = tuple[int, bytes, bytes]
#: Rows a PostgreSQL server-side cursor sends at a time.
_PG_ITERSIZE = 20_000


class AuditNotSupportedError(Exception):
    """The store keeps no chain to verify (a memory store)."""


class NotAChainedStoreError(Exception):
    """The location holds no pingjing events table with its chain table."""


class Snapshot(Protocol):
    """The events and the chain as of one moment."""

    def events(self, after: int) -> Iterator[EventRow]:
        """Every event after a position, in position order."""

    def chain(self, after: int) -> Iterator[ChainRow]:
        """Every chain row after a position, in position order."""

    def chain_row(self, position: int) -> ChainRow | None:
        """The chain row of exactly this position."""

    def chain_before(self, position: int) -> ChainRow | None:
        """The last chain row before a position."""

    def positions_of_event_hash(self, digest: bytes) -> list[int]:
        """Where the chain records this event hash."""

    def rows_of_topic(self, topic: str) -> list[EventRow]:
        """Every event of one type, in position order."""

    def count_events(self) -> int:
        """How many events there are."""


class ChainLog(Protocol):
    """A store whose chain can be read."""

    @property
    def description(self) -> str:
        """How messages name the store."""

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """A consistent view of the events and the chain."""


# -- SQLite ------------------------------------------------------------------------------------------


def read_only_uri(path: Path) -> str:
    """A ``file:`` URI opening ``path`` read-only (percent-encoded: any file name works)."""
    return f"{path.resolve().as_uri()}?mode=ro"


@dataclass(frozen=True)
class SQLiteChainLog:
    """The events and chain of a SQLite file."""

    path: Path
    events_table: str = "stored_events"

    @property
    def description(self) -> str:
        """How messages name the store."""
        return f"SQLite file {self.path}"

    @property
    def chain_table(self) -> str:
        """The chain table beside the events table."""
        return chain_table_of(self.events_table)

    def check(self) -> None:
        """Refuse a file that is no SQLite store with the events and chain tables."""
        if not self.path.is_file():
            raise NotAChainedStoreError(f"{self.path} is not a file")
        with self.path.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise NotAChainedStoreError(f"{self.path} is not a SQLite database")
        with self.snapshot() as snap:
            missing = [t for t in (self.events_table, self.chain_table) if not snap.has_table(t)]
        if self.events_table in missing:
            raise NotAChainedStoreError(f"{self.path} is not a pingjing store (it has no {self.events_table} table)")
        if missing:
            raise NotAChainedStoreError(
                f"{self.path} has no chain table ({self.chain_table}): open it once with this version of "
                "pingjing (e.g. pingjing --database PATH init) to seal its history, then try again"
            )

    @contextmanager
    def snapshot(self) -> Iterator[_SQLiteSnapshot]:
        """One read transaction on a connection of its own."""
        try:
            conn = sqlite3.connect(read_only_uri(self.path), uri=True, isolation_level=None, timeout=10)
        except sqlite3.Error as error:
            raise NotAChainedStoreError(f"{self.path} cannot be opened: {error}") from error
        try:
            conn.execute("BEGIN")
            yield _SQLiteSnapshot(conn, self.events_table, self.chain_table)
            conn.execute("COMMIT")
        finally:
            conn.close()


class _SQLiteSnapshot:
    def __init__(self, conn: sqlite3.Connection, events: str, chain: str) -> None:
        self.conn = conn
        self.events_table = events
        self.chain_table = chain

    def has_table(self, name: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row is not None

    def events(self, after: int) -> Iterator[EventRow]:
        # Typed as stored by the library; a value of another type (a tamperer's) still hashes.
        return self.conn.execute(
            "SELECT rowid, CAST(originator_id AS TEXT), originator_version, CAST(topic AS TEXT), "  # noqa: S608
            f"CAST(state AS BLOB) FROM {self.events_table} WHERE rowid > ? ORDER BY rowid",
            (after,),
        )

    def chain(self, after: int) -> Iterator[ChainRow]:
        return self.conn.execute(
            f"SELECT position, event_hash, chain_hash FROM {self.chain_table} "  # noqa: S608
            "WHERE position > ? ORDER BY position",
            (after,),
        )

    def chain_row(self, position: int) -> ChainRow | None:
        row: ChainRow | None = self.conn.execute(
            f"SELECT position, event_hash, chain_hash FROM {self.chain_table} WHERE position = ?",  # noqa: S608
            (position,),
        ).fetchone()
        return row

    def chain_before(self, position: int) -> ChainRow | None:
        row: ChainRow | None = self.conn.execute(
            f"SELECT position, event_hash, chain_hash FROM {self.chain_table} "  # noqa: S608
            "WHERE position < ? ORDER BY position DESC LIMIT 1",
            (position,),
        ).fetchone()
        return row

    def positions_of_event_hash(self, digest: bytes) -> list[int]:
        rows = self.conn.execute(
            f"SELECT position FROM {self.chain_table} WHERE event_hash = ? ORDER BY position",  # noqa: S608
            (digest,),
        )
        return [int(r[0]) for r in rows]

    def rows_of_topic(self, topic: str) -> list[EventRow]:
        rows = self.conn.execute(
            "SELECT rowid, CAST(originator_id AS TEXT), originator_version, CAST(topic AS TEXT), "  # noqa: S608
            f"CAST(state AS BLOB) FROM {self.events_table} WHERE topic = ? ORDER BY rowid",
            (topic,),
        )
        return list(rows)

    def count_events(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.events_table}").fetchone()[0])  # noqa: S608


# -- PostgreSQL --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresChainLog:
    """The events and chain of a PostgreSQL schema."""

    connect: dict[str, Any]  # psycopg.connect() keywords: dbname, host, port, user, password
    schema: str
    events_table: str = "pingjing_events"

    @property
    def description(self) -> str:
        """How messages name the store."""
        where = f"{self.connect.get('host')}:{self.connect.get('port')}/{self.connect.get('dbname')}"
        return f"PostgreSQL {where} schema {self.schema}"

    @property
    def chain_table(self) -> str:
        """The chain table beside the events table."""
        return chain_table_of(self.events_table)

    @contextmanager
    def snapshot(self) -> Iterator[_PostgresSnapshot]:
        """One REPEATABLE READ, READ ONLY transaction on a connection of its own."""
        with psycopg.connect(**self.connect, autocommit=False) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snap = _PostgresSnapshot(conn, self.schema, self.events_table, self.chain_table)
            missing = [t for t in (self.events_table, self.chain_table) if not snap.has_table(t)]
            if missing:
                raise NotAChainedStoreError(
                    f"schema {self.schema} has no {' or '.join(missing)} table: not a pingjing store "
                    "of this version (open it once with pingjing to create the chain)"
                )
            yield snap
            conn.rollback()


class _PostgresSnapshot:
    def __init__(self, conn: psycopg.Connection[Any], schema: str, events: str, chain: str) -> None:
        self.conn = conn
        self.schema = schema
        self.events_id = SQL("{}.{}").format(Identifier(schema), Identifier(events))
        self.chain_id = SQL("{}.{}").format(Identifier(schema), Identifier(chain))
        self._cursors = 0

    def has_table(self, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s", (self.schema, name)
        ).fetchone()
        return row is not None

    def _stream(self, query: Composed, params: tuple[Any, ...]) -> Iterator[Any]:
        self._cursors += 1
        with self.conn.cursor(name=f"pingjing_audit_{self._cursors}") as cursor:
            cursor.itersize = _PG_ITERSIZE
            cursor.execute(query, params)
            yield from cursor

    def events(self, after: int) -> Iterator[EventRow]:
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id > %s ORDER BY notification_id"
        ).format(self.events_id)
        for position, oid, version, topic, state in self._stream(query, (after,)):
            yield position, id_text(oid), version, topic, state

    def chain(self, after: int) -> Iterator[ChainRow]:
        query = SQL("SELECT position, event_hash, chain_hash FROM {} WHERE position > %s ORDER BY position").format(
            self.chain_id
        )
        return self._stream(query, (after,))

    def chain_row(self, position: int) -> ChainRow | None:
        query = SQL("SELECT position, event_hash, chain_hash FROM {} WHERE position = %s").format(self.chain_id)
        row: ChainRow | None = self.conn.execute(query, (position,)).fetchone()
        return row

    def chain_before(self, position: int) -> ChainRow | None:
        query = SQL(
            "SELECT position, event_hash, chain_hash FROM {} WHERE position < %s ORDER BY position DESC LIMIT 1"
        ).format(self.chain_id)
        row: ChainRow | None = self.conn.execute(query, (position,)).fetchone()
        return row

    def positions_of_event_hash(self, digest: bytes) -> list[int]:
        query = SQL("SELECT position FROM {} WHERE event_hash = %s ORDER BY position").format(self.chain_id)
        return [int(r[0]) for r in self.conn.execute(query, (digest,)).fetchall()]

    def rows_of_topic(self, topic: str) -> list[EventRow]:
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE topic = %s ORDER BY notification_id"
        ).format(self.events_id)
        return [(p, id_text(o), v, t, s) for p, o, v, t, s in self.conn.execute(query, (topic,)).fetchall()]

    def count_events(self) -> int:
        row = self.conn.execute(SQL("SELECT COUNT(*) FROM {}").format(self.events_id)).fetchone()
        return int(row[0]) if row else 0


# -- the application's store ------------------------------------------------------------------------


def chain_log_of(app: PingjingApp) -> SQLiteChainLog | PostgresChainLog:
    """The chain of the application's store; a memory store has none."""
    recorder: Any = app.recorder
    if isinstance(recorder, ChainedSQLiteApplicationRecorder):
        return SQLiteChainLog(Path(recorder.datastore.pool.db_name), recorder.events_table_name)
    if isinstance(recorder, ChainedPostgresApplicationRecorder):
        kwargs: Any = recorder.datastore.pool.kwargs or {}
        connect: dict[str, Any] = {k: kwargs[k] for k in ("dbname", "host", "port", "user") if k in kwargs}
        connect["password"] = kwargs.get("password") or None
        return PostgresChainLog(connect, recorder.datastore.schema, recorder.events_table_name)
    raise AuditNotSupportedError(
        "the tamper-evident log needs a SQLite or PostgreSQL store; a memory store keeps no chain (nothing is stored)"
    )
