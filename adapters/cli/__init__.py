"""The ``pingjing`` command.

Exit status: 0 success, 1 a domain error (the message goes to stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import MapperDeserialisationError, PersistenceError

from adapters.bootstrap import Runtime, bootstrap
from adapters.cli import (
    audit,
    backup,
    cases,
    county,
    events,
    notifications,
    privacy,
    qr,
    reports,
    scheduling,
    serve,
    tokens,
    views,
)
from adapters.cli.common import EXIT_DOMAIN, EXIT_USAGE, UsageError
from adapters.settings import Settings
from adapters.store import StoreConfigError, resolve, store_trouble
from domain.errors import PingjingError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="pingjing", description="评警 — scan-to-rate complaint handling")
    p.add_argument("--database", help="overrides PINGJING_DATABASE (file path, sqlite:///, postgresql://, memory)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = (county, cases, views, events, reports, scheduling, notifications, qr, serve, tokens, privacy)
    for module in (*commands, audit, backup):
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None, *, runtime_factory: Callable[[Settings], Runtime] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {"database": args.database} if args.database else {}
    rt: Runtime | None = None
    try:
        rt = (runtime_factory or bootstrap)(Settings(**overrides))
        handler: Callable[[Runtime, argparse.Namespace], int] = args.handler
        return handler(rt, args)
    except MapperDeserialisationError as error:
        # A stored event that cannot be read for a reason of configuration (a citizen's key wrapped by a
        # master key that is not configured): say that reason, not a traceback.
        if not isinstance(error.__cause__, StoreConfigError):
            raise
        print(f"pingjing: {error.__cause__}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreConfigError, UsageError) as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PingjingError as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    except (PersistenceError, sqlite3.Error, psycopg.Error) as error:  # the drivers' own, unwrapped, too
        if rt is not None:
            what = f"{store_trouble(error, rt.store.path)}; nothing more was written"
        else:
            what = f"the store cannot be opened: {store_trouble(error, _sqlite_path(overrides))}"
        print(f"pingjing: {what}: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    finally:
        if rt is not None:
            rt.close()


def _sqlite_path(overrides: dict[str, Any]) -> Path | None:
    """The SQLite file the settings name, if they name one (to tell why it could not be opened)."""
    try:
        return resolve(Settings(**overrides).database).path
    except (StoreConfigError, PersistenceError, OSError):
        return None


if __name__ == "__main__":
    sys.exit(main())
