"""``backup PATH`` and ``restore PATH``: a consistent copy of a live SQLite store, and bringing one back.

Both check the copy with ``audit verify`` and print what it holds. PostgreSQL stores are
backed up with ``pg_dump`` and restored with ``pg_restore`` (README, "Backup and restore").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from adapters import output
from adapters.audit.backup import BackupError, Copy, backup, restore
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_DOMAIN, EXIT_OK, UsageError, add_format

_POSTGRES = "a PostgreSQL store is backed up with pg_dump and restored with pg_restore (README: Backup and restore)"


def register(sub: Any) -> None:
    """Add ``backup`` and ``restore``."""
    save = sub.add_parser(
        "backup", help="copy the live SQLite store (events, chain, views) to a new file and verify the copy"
    )
    save.add_argument("path", type=Path, metavar="PATH", help="the new file")
    add_format(save, "table", "json")
    save.set_defaults(handler=cmd_backup)
    load = sub.add_parser(
        "restore", help="replace the SQLite store with a backup that passes audit verify (the store must be idle)"
    )
    load.add_argument("path", type=Path, metavar="PATH", help="a file made by pingjing backup")
    add_format(load, "table", "json")
    load.set_defaults(handler=cmd_restore)


def _sqlite_store(rt: Runtime, what: str) -> Path:
    if rt.store.kind == "postgres":
        raise UsageError(f"{what}: {_POSTGRES}")
    if rt.store.kind != "sqlite" or rt.store.path is None:
        raise UsageError(f"{what}: a memory store keeps nothing to {what}")
    return rt.store.path


def cmd_backup(rt: Runtime, args: argparse.Namespace) -> int:
    """Copy, verify the copy, print it; exit 1 when the copy does not verify (it is kept, as evidence)."""
    store = _sqlite_store(rt, "backup")
    try:
        made = backup(store, args.path, rt.app.mapper)
    except BackupError as error:
        print(f"pingjing: backup refused: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    _show(f"backup of {store}", made, args.format)
    return EXIT_OK if made.verification.intact else EXIT_DOMAIN


def cmd_restore(rt: Runtime, args: argparse.Namespace) -> int:
    """Check the copy and the store's idleness, replace the store, verify it again."""
    store = _sqlite_store(rt, "restore")
    rt.app.close()  # this process's own connections would make the store look busy
    try:
        made = restore(args.path, store, rt.app.mapper)
    except BackupError as error:
        print(f"pingjing: restore refused: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    _show(f"restored {store} from {args.path}", made, args.format)
    return EXIT_OK if made.verification.intact else EXIT_DOMAIN


def _show(title: str, made: Copy, fmt: str) -> None:
    v = made.verification
    data = {
        "path": str(made.path),
        "bytes": made.size,
        "tables": made.tables,
        "events": v.events,
        "head_position": v.head_position,
        "head_hash": v.head_hash,
        "seals_checked": v.seals,
        "audit_verify": "intact" if v.intact else f"NOT INTACT: {v.problem.summary if v.problem else ''}",
    }
    if fmt == "json":
        output.emit_json(data)
        return
    output.table(title, ("field", "value"), list(data.items()))
