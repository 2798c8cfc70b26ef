"""The key table: one wrapped data key per citizen reference, in the event store's own database.

::

    pingjing_citizen_keys
      citizen_ref    TEXT PRIMARY KEY    the contact's pseudonym (never a phone or a name)
      master_key_id  TEXT NOT NULL       which master key wrapped it (16 hex digits)
      wrapped        BLOB / BYTEA        nonce (12 bytes) + AES-256-GCM(master key, data key) (48 bytes)
      created_at     TEXT / TIMESTAMPTZ  when it was made

A table of its own, beside the events and outside every projection: erasing a citizen deletes
their row and nothing else, and a rebuild never drops it. The tables work through a
connection of their own (SQLite: one ``sqlite3`` connection; PostgreSQL: one psycopg
connection in the store's schema), whatever the event store's recorder does.

**Writing keys.** Keys are created in a transaction of their own, committed before the events
that use them are saved (:meth:`~adapters.privacy.vault.Vault.prepare`): a key is durable
before or with its first event, never after; if the events' transaction then fails, the key
is an orphan that opens nothing, which is harmless. That commit does not wait for the disk
itself (SQLite ``synchronous=NORMAL`` in WAL mode, PostgreSQL ``synchronous_commit=off`` for
that transaction): both databases write one log, in order, and the events' own durable commit
right after it flushes that log up to and past the key's commit. So a crash that loses the key
loses its events too, and a command with a new citizen still waits for one flush, not two.
Erasures and rotations commit durably on their own (``durable=True``). Creating holds the
write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a shared advisory lock, which a master key
rotation takes exclusively for its last pass), so a rotation never misses a key made while it
ran.

**Deleting keys.** SQLite deletes with ``secure_delete`` on (the freed bytes are overwritten
with zeros, in the page and in free pages) and then checkpoints the write-ahead log and
truncates it, so the key's bytes survive neither in the database file nor in the ``-wal``
file. PostgreSQL vacuums the table after a delete, so the dead row's space is reclaimed;
its own write-ahead log and any backup still hold the wrapped key until they age out, which
is why keys are wrapped: without the master key a stray copy opens nothing (and a master key
rotation makes such copies worthless even with the old key gone).
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError
from psycopg import sql

from adapters.persistence import writelock
from adapters.persistence.writelock import WriterLock

TABLE = "pingjing_citizen_keys"
#: Citizens whose keys one query of :meth:`KeyCursor.get_many` reads at most.
FETCH_MANY = 500
#: The advisory lock that creators take shared and a rotation's last pass exclusive (PostgreSQL).
_LOCK_KEY = 0x706A6B6579  # "pjkey"
#: The advisory lock that serialises creating the key table between processes starting together.
_CREATE_KEY = 0x706A6B6379  # "pjkcy"


@dataclass(frozen=True)
class KeyRow:
    """One stored key: whose, wrapped by which master key, and the wrapped bytes."""

    citizen_ref: str
    master_key_id: str
    wrapped: bytes


class KeyCursor(ABC):
    """What can be done inside one transaction on the key table.

    The statements are the same on both databases but for the placeholder (``?`` or ``%s``);
    only storing new keys differs (PostgreSQL stores a batch in one statement).
    """

    #: The driver's parameter placeholder.
    placeholder: str = "?"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _run(self, statement: str, params: Sequence[Any]) -> Any:
        return self.conn.execute(statement.replace("?", self.placeholder), params)

    def get(self, citizen_ref: str) -> KeyRow | None:
        """The citizen's row."""
        row = self._run(
            f"SELECT citizen_ref, master_key_id, wrapped FROM {TABLE} WHERE citizen_ref = ?", (citizen_ref,)
        ).fetchone()
        return KeyRow(row[0], row[1], bytes(row[2])) if row else None

    def get_many(self, citizen_refs: Sequence[str]) -> list[KeyRow]:
        """The rows of those citizens that have one (in no particular order)."""
        rows: list[KeyRow] = []
        for start in range(0, len(citizen_refs), FETCH_MANY):
            chunk = citizen_refs[start : start + FETCH_MANY]
            found = self._run(
                f"SELECT citizen_ref, master_key_id, wrapped FROM {TABLE} "
                f"WHERE citizen_ref IN ({', '.join('?' * len(chunk))})",
                tuple(chunk),
            ).fetchall()
            rows.extend(KeyRow(r[0], r[1], bytes(r[2])) for r in found)
        return rows

    @abstractmethod
    def insert(self, row: KeyRow) -> bool:
        """Store a new key; False (nothing written) when the citizen already has one."""

    def insert_many(self, rows: Sequence[KeyRow]) -> set[str]:
        """Store new keys; the citizens whose key was written (the others had one already)."""
        return {row.citizen_ref for row in rows if self.insert(row)}

    def rewrap(self, row: KeyRow, old_master_key_id: str) -> bool:
        """Replace the wrapping of a key still wrapped by ``old_master_key_id``; False when it no longer is."""
        cur = self._run(
            f"UPDATE {TABLE} SET master_key_id = ?, wrapped = ? WHERE citizen_ref = ? AND master_key_id = ?",
            (row.master_key_id, row.wrapped, row.citizen_ref, old_master_key_id),
        )
        return bool(cur.rowcount == 1)

    def delete(self, citizen_ref: str) -> bool:
        """Delete the citizen's key; False when there was none."""
        cur = self._run(f"DELETE FROM {TABLE} WHERE citizen_ref = ?", (citizen_ref,))
        return bool(cur.rowcount == 1)

    def not_wrapped_by(self, master_key_id: str, limit: int) -> list[KeyRow]:
        """Up to ``limit`` keys wrapped by another master key than ``master_key_id``."""
        rows = self._run(
            f"SELECT citizen_ref, master_key_id, wrapped FROM {TABLE} WHERE master_key_id <> ? "
            "ORDER BY citizen_ref LIMIT ?",
            (master_key_id, limit),
        ).fetchall()
        return [KeyRow(r[0], r[1], bytes(r[2])) for r in rows]


class KeyTable(ABC):
    """The key table of one database."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ready = False
        #: The table's own connection (sqlite3 or psycopg), opened on first use.
        self._conn: Any = None

    @abstractmethod
    def description(self) -> str:
        """Where the table is, for messages."""

    @contextmanager
    def transaction(self, *, exclusive: bool = False, durable: bool = True) -> Iterator[KeyCursor]:
        """A write transaction (committed when the block ends without an error).

        ``exclusive``: no key is created meanwhile by any process (a rotation's last pass).
        ``durable=False``: the commit does not wait for the disk; only for what a durable commit
        of the same database follows at once (new keys, then their events: see the module).
        """
        with self._lock:
            self._ensure()
            with self._transaction(exclusive=exclusive, durable=durable) as cursor:
                yield cursor

    def fetch(self, citizen_ref: str) -> KeyRow | None:
        """The citizen's row, read outside any write transaction."""
        with self._lock:
            self._ensure()
            return self._fetch(citizen_ref)

    def fetch_many(self, citizen_refs: Sequence[str]) -> list[KeyRow]:
        """The rows of those citizens that have one, read in a few queries outside any write transaction."""
        if not citizen_refs:
            return []
        with self._lock:
            self._ensure()
            return self._fetch_many(citizen_refs)

    def counts(self) -> dict[str, int]:
        """How many keys each master key wraps."""
        with self._lock:
            self._ensure()
            return self._counts()

    def is_empty(self) -> bool:
        """True when no key is stored."""
        return not self.counts()

    def purge(self) -> str | None:
        """Make deleted rows' bytes unrecoverable from the database's files, as far as the database allows.

        None when done; otherwise why not yet (the deletion itself stands either way).
        """
        with self._lock:
            self._ensure()
            return self._purge()

    def _ensure(self) -> None:
        if not self._ready:
            self._create()
            self._ready = True

    @abstractmethod
    def _create(self) -> None: ...

    @abstractmethod
    def _transaction(self, *, exclusive: bool, durable: bool) -> Any: ...

    @abstractmethod
    def _fetch(self, citizen_ref: str) -> KeyRow | None: ...

    @abstractmethod
    def _fetch_many(self, citizen_refs: Sequence[str]) -> list[KeyRow]: ...

    @abstractmethod
    def _counts(self) -> dict[str, int]: ...

    @abstractmethod
    def _purge(self) -> str | None: ...

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- SQLite -------------------------------------------------------------------------------


class _SqliteCursor(KeyCursor):
    def insert(self, row: KeyRow) -> bool:
        cur = self._run(
            f"INSERT INTO {TABLE} (citizen_ref, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (citizen_ref) DO NOTHING",
            (row.citizen_ref, row.master_key_id, row.wrapped, _now()),
        )
        return bool(cur.rowcount == 1)


class SqliteKeyTable(KeyTable):
    """The key table in the SQLite file of the events."""

    def __init__(self, path: Path, *, lock_timeout: float = 10.0) -> None:
        super().__init__()
        self.path = path
        self.lock_timeout = lock_timeout
        self._conn: sqlite3.Connection | None = None
        self._wal = False
        self._writer = WriterLock.beside(path)

    def description(self) -> str:
        return f"SQLite file {self.path}"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self.lock_timeout, isolation_level=None, check_same_thread=False
                )
                # Deleted and overwritten bytes are zeroed, not left in the page or the freelist.
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("PRAGMA synchronous = FULL")
                # Only in WAL mode (the event store's) is a commit that skips the flush made durable by
                # the next durable commit of the file; otherwise every commit is durable.
                self._wal = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
            except sqlite3.Error as error:
                raise OperationalError(f"key table in {self.description()}: {error}") from error
            self._conn = conn
        return self._conn

    def _create(self) -> None:
        try:
            self._connection().execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (citizen_ref TEXT PRIMARY KEY, master_key_id TEXT NOT NULL, "
                "wrapped BLOB NOT NULL, created_at TEXT NOT NULL)"
            )
        except sqlite3.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error

    @contextmanager
    def _transaction(self, *, exclusive: bool, durable: bool) -> Iterator[KeyCursor]:
        # The event store's writers' lock first (handed over at once between processes), then
        # BEGIN IMMEDIATE takes SQLite's single write lock: creators and a rotation are serialised.
        with writelock.held(self._writer), self._sqlite_transaction(durable) as cursor:
            yield cursor

    @contextmanager
    def _sqlite_transaction(self, durable: bool) -> Iterator[KeyCursor]:
        conn = self._connection()
        try:
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable or not self._wal else 'NORMAL'}")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error
        try:
            yield _SqliteCursor(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as error:  # a full disk, a read-only file: the store's own kind of error
            self._rollback(conn)
            raise OperationalError(f"key table in {self.description()}: {error}") from error
        except BaseException:
            self._rollback(conn)
            raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _fetch(self, citizen_ref: str) -> KeyRow | None:
        try:
            return _SqliteCursor(self._connection()).get(citizen_ref)
        except sqlite3.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error

    def _fetch_many(self, citizen_refs: Sequence[str]) -> list[KeyRow]:
        try:
            return _SqliteCursor(self._connection()).get_many(citizen_refs)
        except sqlite3.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error

    def _counts(self) -> dict[str, int]:
        try:
            rows = self._connection().execute(
                f"SELECT master_key_id, COUNT(*) FROM {TABLE} GROUP BY master_key_id ORDER BY master_key_id"
            ).fetchall()
        except sqlite3.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error
        return {str(r[0]): int(r[1]) for r in rows}

    def _purge(self) -> str | None:
        """Copy every page out of the write-ahead log into the file and truncate the log to nothing.

        With ``secure_delete`` the new version of the key's page has zeros where the key was;
        the checkpoint writes it over the old page in the database file, and the truncation
        removes the log's older frames (the key's insert among them). A reader still busy in
        another process can hold the checkpoint back: then the log is truncated at the next
        erasure or checkpoint, and ``privacy erase`` says so.
        """
        try:
            busy, _, _ = self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as error:
            return f"the write-ahead log could not be checkpointed: {error}"
        if busy:
            return (
                "the write-ahead log could not be truncated (another process is reading); "
                "the deleted bytes leave the -wal file at its next checkpoint"
            )
        return None


# -- PostgreSQL ---------------------------------------------------------------------------


class _PostgresCursor(KeyCursor):
    placeholder = "%s"

    def insert(self, row: KeyRow) -> bool:
        return bool(self.insert_many([row]))

    def insert_many(self, rows: Sequence[KeyRow]) -> set[str]:
        # One statement for the whole batch: a round trip per key would cost more than the key.
        found = self.conn.execute(
            f"INSERT INTO {TABLE} (citizen_ref, master_key_id, wrapped, created_at) "
            "SELECT r, k, w, now() FROM unnest(%s::text[], %s::text[], %s::bytea[]) AS t(r, k, w) "
            "ON CONFLICT (citizen_ref) DO NOTHING RETURNING citizen_ref",
            ([r.citizen_ref for r in rows], [r.master_key_id for r in rows], [r.wrapped for r in rows]),
        ).fetchall()
        return {str(f[0]) for f in found}


class PostgresKeyTable(KeyTable):
    """The key table in the PostgreSQL database (and schema) of the events."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__()
        self.env = env
        self.schema = env.get("POSTGRES_SCHEMA") or None
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def description(self) -> str:
        where = f"{self.env.get('POSTGRES_HOST', '127.0.0.1')}:{self.env.get('POSTGRES_PORT', '5432')}"
        schema = f" schema {self.schema}" if self.schema else ""
        return f"PostgreSQL {where}/{self.env['POSTGRES_DBNAME']}{schema}"

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        env = self.env
        try:
            conn = psycopg.connect(
                dbname=env["POSTGRES_DBNAME"],
                host=env.get("POSTGRES_HOST", "127.0.0.1"),
                port=int(env.get("POSTGRES_PORT", "5432")),
                user=env.get("POSTGRES_USER", "postgres"),
                password=env.get("POSTGRES_PASSWORD") or None,
                connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
                autocommit=True,
            )
            if self.schema:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        except psycopg.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error
        self._conn = conn
        return conn

    def _live(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection, checked with a ping first and made again if the server went away (a restart).

        A transaction's body cannot be run twice, so the check comes before it, as the event store's
        own pool does (``POSTGRES_PRE_PING``).
        """
        conn = self._connection()
        try:
            conn.execute("SELECT 1")
        except psycopg.OperationalError:
            self._conn = None
            conn = self._connection()
        return conn

    def _run(self, fn: Any) -> Any:
        """``fn(connection)``, connecting again once if the connection was lost (a server restart)."""
        try:
            return fn(self._connection())
        except psycopg.OperationalError:
            if self._conn is not None and not self._conn.broken and not self._conn.closed:
                raise
            self._conn = None
            try:
                return fn(self._connection())
            except psycopg.Error as error:
                raise OperationalError(f"key table in {self.description()}: {error}") from error

    def _create(self) -> None:
        def create(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
            # Processes starting together would race in CREATE TABLE IF NOT EXISTS (PostgreSQL
            # then refuses the loser with "type already exists"): they take turns, and the
            # later ones find the table made.
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_KEY,))
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (citizen_ref TEXT PRIMARY KEY, master_key_id TEXT NOT NULL, "
                    "wrapped BYTEA NOT NULL, created_at TIMESTAMPTZ NOT NULL)"
                )

        self._run(create)

    @contextmanager
    def _transaction(self, *, exclusive: bool, durable: bool) -> Iterator[KeyCursor]:
        conn = self._live()
        try:
            with conn.transaction():
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit TO OFF")
                lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
                conn.execute(f"SELECT {lock}(%s)", (_LOCK_KEY,))
                yield _PostgresCursor(conn)
        except psycopg.Error as error:
            raise OperationalError(f"key table in {self.description()}: {error}") from error

    def _fetch(self, citizen_ref: str) -> KeyRow | None:
        def fetch(conn: psycopg.Connection[tuple[Any, ...]]) -> KeyRow | None:
            return _PostgresCursor(conn).get(citizen_ref)

        row: KeyRow | None = self._run(fetch)
        return row

    def _fetch_many(self, citizen_refs: Sequence[str]) -> list[KeyRow]:
        def fetch(conn: psycopg.Connection[tuple[Any, ...]]) -> list[KeyRow]:
            return _PostgresCursor(conn).get_many(citizen_refs)

        rows: list[KeyRow] = self._run(fetch)
        return rows

    def _counts(self) -> dict[str, int]:
        def counts(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, int]:
            rows: Sequence[tuple[Any, ...]] = conn.execute(
                f"SELECT master_key_id, COUNT(*) FROM {TABLE} GROUP BY master_key_id ORDER BY master_key_id"
            ).fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        found: dict[str, int] = self._run(counts)
        return found

    def _purge(self) -> str | None:
        """Reclaim the deleted rows' space now rather than at the next autovacuum."""
        try:
            self._run(lambda conn: conn.execute(f"VACUUM {TABLE}"))
        except (psycopg.Error, OperationalError) as error:
            return f"the key table could not be vacuumed: {error}"
        return None
