"""Where the read models live: tables beside the events, with eventsourcing's tracking.

A :class:`ViewStore` wraps the SQL database of the projections (by default the event
store's own database) and the library's tracking recorder, so that a batch of view
rows and the position it reached are written in one transaction: a batch is applied
exactly once, whatever stops the process in between. Statements are written with
``?`` placeholders and translated for PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg import sql

from domain.application import PingjingApp

#: Ends a ``CREATE TABLE`` whose rows are best kept in its primary key's B-tree on SQLite;
#: :meth:`ViewStore.create` leaves it out on PostgreSQL, which has no such clause.
SQLITE_ONLY = " WITHOUT ROWID"
#: The advisory lock under which view tables are created on PostgreSQL ("pjview").
_CREATE_LOCK = 0x706A76696577
#: The version of each projection's tables as stored (:meth:`ViewStore.upgrade`).
VERSIONS = "pj_versions"
_VERSIONS_TABLE = f"CREATE TABLE IF NOT EXISTS {VERSIONS} (projection TEXT PRIMARY KEY, version INTEGER NOT NULL)"


@dataclass(frozen=True)
class Shape:
    """What :meth:`ViewStore.upgrade` needs to know of a projection: its tracking name, the version
    of its tables' shape, and the tables to drop when the stored ones are of another."""

    name: str
    tracking_name: str
    version: int
    tables: tuple[str, ...]


class Cursor:
    """A cursor with one placeholder style and rows as plain tuples."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgres" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        self.raw.execute(self._sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many rows."""
        if rows:
            # Both drivers take any sequence of parameters per row: the rows go as they are.
            self.raw.executemany(self._sql(statement), rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Rows of the last query, as tuples in the order of the selected columns."""
        return [self._tuple(row) for row in self.raw.fetchall()]

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        raw = getattr(self.raw, "sqlite_cursor", self.raw)  # the library wraps sqlite3's cursor
        return int(raw.rowcount)

    def fetchone(self) -> tuple[Any, ...] | None:
        """One row of the last query, or None."""
        row = self.raw.fetchone()
        return None if row is None else self._tuple(row)

    @staticmethod
    def _tuple(row: Any) -> tuple[Any, ...]:
        # PostgreSQL rows come as dicts (the library's row factory), SQLite rows as sqlite3.Row.
        return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class ViewStore:
    """The projections' database: their tables and their tracking positions."""

    def __init__(self, datastore: Any, dialect: str, description: str) -> None:
        self.datastore = datastore
        self.dialect = dialect
        self.description = description
        recorder_class: Any = PostgresTrackingRecorder if dialect == "postgres" else SQLiteTrackingRecorder
        self.tracking: Any = recorder_class(datastore)
        with self._creating():
            self.tracking.create_table()
            with self.transaction(commit=True) as cur:
                cur.execute(_VERSIONS_TABLE)

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Tables are created one process at a time on PostgreSQL, where two racing ``CREATE TABLE
        IF NOT EXISTS`` refuse the loser ("type already exists"): an advisory lock held by a
        transaction of its own while the tables are made."""
        if self.dialect != "postgres":
            yield
            return
        with self.datastore.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            yield

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def beside(cls, app: PingjingApp) -> ViewStore:
        """The views in the event store's own database (a private memory database for a memory store)."""
        datastore = getattr(app.factory, "datastore", None)
        if isinstance(datastore, PostgresDatastore):
            return cls(datastore, "postgres", "the event store's PostgreSQL database")
        if isinstance(datastore, SQLiteDatastore):
            return cls(datastore, "sqlite", "the event store's SQLite file")
        return cls.in_memory()

    @classmethod
    def in_memory(cls) -> ViewStore:
        """Views in a private SQLite memory database (tests, notebooks, as-of queries)."""
        name = f"file:pingjing-views-{uuid.uuid4().hex}?mode=memory&cache=shared"
        return cls(SQLiteDatastore(name), "sqlite", "memory")

    @classmethod
    def sqlite_file(cls, path: Path) -> ViewStore:
        """Views in their own SQLite file (``projections rebuild --into PATH``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(SQLiteDatastore(str(path), lock_timeout=10), "sqlite", f"SQLite file {path}")

    # -- use ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """A transaction; committed on success when ``commit``."""
        with self.datastore.transaction(commit=commit) as raw:
            if self.dialect == "postgres":
                # View tables live in the store's schema, like its events and tracking.
                raw.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.datastore.schema)))
            yield Cursor(raw, self.dialect)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query."""
        with self.transaction(commit=False) as cur:
            cur.execute(statement, params)
            return cur.fetchall()

    def create(self, statements: Sequence[str]) -> None:
        """Create tables and indexes if missing (the SQLite-only clause left out on PostgreSQL).

        On PostgreSQL, processes starting together take turns (:meth:`_creating`).
        """
        with self._creating(), self.transaction(commit=True) as cur:
            for statement in statements:
                cur.execute(statement.removesuffix(SQLITE_ONLY) if self.dialect == "postgres" else statement)

    def drop(self, cur: Cursor, tables: Sequence[str]) -> None:
        """Drop these view tables (a rebuild from scratch).

        SQLite as built here overwrites every page it frees with zeros (``secure_delete``), which
        makes dropping a large view cost as much as writing it again. The views hold nothing the
        log does not (an erased contact is shown erased, its line rewritten when the erasure
        came), so their pages are freed as they are (``FAST``: a page written anyway is still
        cleaned) and the connection's setting is put back.
        """
        if self.dialect != "sqlite":
            for table in tables:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            return
        cur.execute("PRAGMA secure_delete")
        row = cur.fetchone()
        setting = int(row[0]) if row else 1
        cur.execute("PRAGMA secure_delete = FAST")
        try:
            for table in tables:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            cur.execute(f"PRAGMA secure_delete = {setting:d}")

    def upgrade(self, shapes: Sequence[Shape]) -> list[str]:
        """Drop the tables and positions of every projection stored in another shape than ``shapes``
        say (or before versions were stored), for the next catch-up to rebuild it; record the
        versions. Returns the names of the projections dropped that had folded something (a new
        store's are only recorded).

        Read first without taking the write lock (almost always nothing to do), then again under
        it: processes starting together drop a projection once (on PostgreSQL they take turns
        as for :meth:`create`).
        """
        if all(self._versions().get(shape.name) == shape.version for shape in shapes):
            return []
        dropped = []
        with self._creating(), self.transaction(commit=True) as cur:
            cur.execute(f"SELECT projection, version FROM {VERSIONS}")
            stored = {str(name): int(version) for name, version in cur.fetchall()}
            for shape in shapes:
                if stored.get(shape.name) == shape.version:
                    continue
                cur.execute(
                    f"SELECT 1 FROM {self._tracking_table} WHERE {_WITH_SHARES} LIMIT 1",
                    _with_shares(shape.tracking_name),
                )
                if cur.fetchone() is not None:
                    dropped.append(shape.name)
                self.drop(cur, shape.tables)
                self.reset_position(cur, shape.tracking_name)
                cur.execute(
                    f"INSERT INTO {VERSIONS} (projection, version) VALUES (?, ?) "
                    "ON CONFLICT (projection) DO UPDATE SET version = excluded.version",
                    (shape.name, shape.version),
                )
        return dropped

    def _versions(self) -> dict[str, int]:
        return {str(name): int(version) for name, version in self.query(f"SELECT projection, version FROM {VERSIONS}")}

    def position(self, name: str) -> int:
        """How far the named projection has applied the log (0: nothing yet)."""
        return int(self.tracking.max_tracking_id(name) or 0)

    @property
    def _tracking_table(self) -> str:
        return "tracking" if self.dialect == "sqlite" else str(self.tracking.tracking_table_name)

    def record_position(self, cur: Cursor, name: str, expected: int, position: int) -> None:
        """Move the position from ``expected`` to ``position`` inside the batch's own transaction.

        A compare-and-set: if another runner moved the position on since this one read it, the
        batch was folded from stale rows and must not be stored; the library's IntegrityError
        rolls the transaction back and the runner resumes from what is stored.
        """
        if expected == 0:
            # A rebuild in shares lays its shares' rows out at 0 first (see :meth:`lay_out_shares`).
            table = self._tracking_table
            cur.execute(
                f"INSERT INTO {table} (application_name, notification_id) VALUES (?, ?) "
                f"ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
                f"WHERE {table}.notification_id = 0",
                (name, position),
            )
        else:
            cur.execute(
                f"UPDATE {self._tracking_table} SET notification_id = ? "
                "WHERE application_name = ? AND notification_id = ?",
                (position, name, expected),
            )
        if cur.rowcount != 1:
            msg = f"{name}: another runner stored position past {expected} first"
            raise IntegrityError(msg)

    def reset_position(self, cur: Cursor, name: str) -> None:
        """Forget a projection's position, and its shares' (before a rebuild from scratch)."""
        cur.execute(f"DELETE FROM {self._tracking_table} WHERE {_WITH_SHARES}", _with_shares(name))

    # -- shares (see projections.base.Share) ----------------------------------------------------

    def positions_of(self, name: str) -> dict[str, int]:
        """The stored positions of a projection and of its shares, by tracking name."""
        rows = self.query(
            f"SELECT application_name, notification_id FROM {self._tracking_table} WHERE {_WITH_SHARES}",
            _with_shares(name),
        )
        return {str(n): int(p) for n, p in rows}

    def standing(self, name: str) -> int:
        """Where a projection stands: its position, or its slowest share's (a share not stored: 0)."""
        positions = self.positions_of(name)
        count = share_count_of(name, positions)
        if not count:
            return positions.get(name, 0)
        return min(positions.get(f"{name}/{index}/{count}", 0) for index in range(count))

    def share_count(self, name: str) -> int:
        """In how many shares the projection is stored (0: whole, one position of its own)."""
        return share_count_of(name, self.positions_of(name))

    def lay_out_shares(self, cur: Cursor, name: str, count: int) -> None:
        """Store a projection as ``count`` shares, each at position 0 (after :meth:`reset_position`).

        Every runner that then looks finds the shares, folds each on its own and leaves the
        whole projection's position alone, until :meth:`merge_shares`.
        """
        cur.executemany(
            f"INSERT INTO {self._tracking_table} (application_name, notification_id) VALUES (?, 0)",
            [(f"{name}/{index}/{count}",) for index in range(count)],
        )

    def merge_shares(self, name: str) -> bool:
        """Store a projection whose shares all reached one position as one whole at that position.

        False (and nothing changed) when its shares stand at different positions, or it has none.
        """
        with self.transaction(commit=True) as cur:
            cur.execute(
                f"SELECT application_name, notification_id FROM {self._tracking_table} WHERE {_WITH_SHARES}",
                _with_shares(name),
            )
            found = {str(n): int(p) for n, p in cur.fetchall()}
            count = share_count_of(name, found)
            reached = {found.get(f"{name}/{index}/{count}", 0) for index in range(count)}
            if not count or name in found or len(reached) != 1:
                return False
            self.reset_position(cur, name)
            self.record_position(cur, name, 0, reached.pop())
        return True

    def close(self) -> None:
        """Release the connections this store opened itself."""
        self.datastore.close()


#: The tracking rows of a projection and of its shares (``NAME/INDEX/COUNT``): see :func:`_with_shares`.
_WITH_SHARES = "application_name = ? OR substr(application_name, 1, ?) = ?"


def _with_shares(name: str) -> tuple[str, int, str]:
    """The parameters of :data:`_WITH_SHARES` for the projection ``name``."""
    return (name, len(name) + 1, f"{name}/")


def share_count_of(name: str, positions: dict[str, int]) -> int:
    """In how many shares ``positions`` (:meth:`ViewStore.positions_of`) store the projection ``name``."""
    counts = {int(key.rsplit("/", 1)[1]) for key in positions if key != name}
    if len(counts) > 1:
        msg = f"{name} is stored in shares of different layouts: {sorted(positions)}"
        raise ValueError(msg)
    return counts.pop() if counts else 0
