"""Helpers for the adapter tests: running the CLI in-process, copying and counting stores."""

from __future__ import annotations

import shutil
from pathlib import Path

from adapters.cli import main
from adapters.store import resolve
from domain.application import PingjingApp


def run_cli(*argv: str) -> int:
    """``pingjing ARGV`` in-process; argparse's own exits become the returned status."""
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1


def copy_store(source: Path, target: Path) -> Path:
    """Copy a SQLite store file (and its write-ahead log, if one is left) to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    for suffix in ("-wal", "-shm"):
        extra = source.with_name(source.name + suffix)
        if extra.exists():
            shutil.copyfile(extra, target.with_name(target.name + suffix))
    return target


def event_count(database: Path | str) -> int:
    """How many events the store at ``database`` holds."""
    app = PingjingApp(env=resolve(str(database)).env)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()
