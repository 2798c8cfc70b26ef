"""Backing up a live SQLite store and restoring it, each copy checked with ``audit verify``.

**Backup** uses SQLite's online backup API in a single step: it reads the whole database
inside one read transaction, which in WAL mode is a snapshot that writers (``pingjing
serve``) do not wait for and cannot disturb. The copy holds the events, the chain and
the views (they live in the same file), is written beside its destination and renamed
into place once it is on disk, and is left in rollback-journal mode: one self-contained
file, nothing beside it.

**Restore** replaces the configured store with a copy, but only

- when the copy is a pingjing store whose log passes ``audit verify``, and
- when no other connection, in any process, has the store open. SQLite itself is asked:
  a connection in exclusive locking mode switches the store out of WAL mode, which SQLite
  grants only to the sole connection to the database, and then holds an exclusive lock.
  This is sound where looking for ``-wal``/``-shm`` files is not (a crashed process leaves
  them behind; an idle reader leaves nothing to see) and where a plain ``BEGIN EXCLUSIVE``
  is not (in WAL mode it does not keep readers out).

While that lock is held, the copy is written beside the store, synced, checked again, and
renamed over the store (an atomic replacement: a crash leaves the old store or the new one,
never a mixture); stale ``-wal``/``-shm`` files are removed first, as an old WAL replayed
onto the new file would corrupt it. Then the restored store is verified once more. Every
refusal comes before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import Mapper

from adapters.audit.log import NotAChainedStoreError, SQLiteChainLog, read_only_uri
from adapters.audit.verify import Verification, verify

#: How long to wait for the store's lock before deciding another process holds it.
LOCK_WAIT_SECONDS = 1.0


class BackupError(Exception):
    """A backup or restore refused, with the reason; nothing was written."""


@dataclass(frozen=True)
class Copy:
    """What a backup or restore copied, and what ``audit verify`` said of the result."""

    path: Path
    size: int
    tables: int
    verification: Verification


def backup(store: Path, target: Path, mapper: Mapper[UUID]) -> Copy:
    """Copy the live store ``store`` to ``target`` (a new file) and verify the copy."""
    if not store.is_file():
        raise BackupError(f"there is no store at {store}")
    if target.exists():
        raise BackupError(f"{target} already exists: choose a new name (a backup never overwrites)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(store, partial)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Copy(target, target.stat().st_size, _tables(target), verify(SQLiteChainLog(target), mapper))


def restore(candidate: Path, store: Path, mapper: Mapper[UUID]) -> Copy:
    """Replace ``store`` with a copy of ``candidate`` once both are found fit; verify the result.

    The caller must have closed its own connections to ``store``: any open connection,
    this process's included, makes the restore refuse.
    """
    if not candidate.exists():
        raise BackupError(f"there is no file {candidate}")
    if store.exists() and candidate.resolve() == store.resolve():
        raise BackupError(f"{candidate} is the configured store itself")
    log = SQLiteChainLog(candidate)
    try:
        log.check()
        found = verify(log, mapper)
    except NotAChainedStoreError as error:
        raise BackupError(str(error)) from None
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{candidate} cannot be read as a pingjing store: {error}") from None
    if not found.intact:
        assert found.problem is not None  # noqa: S101 - not intact means a problem was named
        raise BackupError(
            f"{candidate} does not pass audit verify (position {found.problem.position}: {found.problem.summary}); "
            "it is not restored"
        )
    partial = store.with_name(store.name + ".restore-partial")
    with _sole_access(store):
        try:
            partial.unlink(missing_ok=True)
            _copy(candidate, partial)
            _fsync(partial)
            copied = verify(SQLiteChainLog(partial), mapper)
            if not copied.intact or (copied.head_position, copied.head_hash) != (found.head_position, found.head_hash):
                raise BackupError(f"the copy of {candidate} written beside the store did not verify; nothing replaced")
            for stale in (_beside(store, "-wal"), _beside(store, "-shm"), _beside(store, "-journal")):
                stale.unlink(missing_ok=True)
            os.replace(partial, store)
            _fsync(store.parent)
        finally:
            partial.unlink(missing_ok=True)
    restored = verify(SQLiteChainLog(store), mapper)
    return Copy(store, store.stat().st_size, _tables(store), restored)


@contextlib.contextmanager
def _sole_access(store: Path) -> Iterator[None]:
    """Hold the store so that nobody else can open it, or refuse if anybody has it open.

    Switching a database out of WAL mode needs the only connection to it; in exclusive
    locking mode the lock taken then is kept until the connection closes.
    """
    if not store.exists():
        yield
        return
    try:
        conn = sqlite3.connect(store, timeout=LOCK_WAIT_SECONDS, isolation_level=None)
    except sqlite3.Error as error:
        raise BackupError(f"the store {store} cannot be opened: {error}") from None
    try:
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as error:
            raise BackupError(_in_use(store, str(error))) from None
        if mode is None or str(mode[0]).lower() != "delete":
            raise BackupError(_in_use(store, f"journal mode stays {mode[0] if mode else 'unknown'}"))
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _in_use(store: Path, detail: str) -> str:
    return (
        f"the store {store} is in use by another process ({detail}): stop pingjing serve, the scheduler, "
        "the projection runner and any other program using it, then restore again; nothing was written"
    )


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of ``source`` in one step of the online backup API, as one self-contained file."""
    src = sqlite3.connect(read_only_uri(source), uri=True, timeout=10)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: everything in one step, within one read transaction of the source
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _tables(path: Path) -> int:
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    finally:
        conn.close()


def _beside(store: Path, suffix: str) -> Path:
    return store.with_name(store.name + suffix)


def _fsync(path: Path) -> None:
    """Make a file's content (or a directory's entries) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
