"""The ``pingjing`` command.

Exit status: 0 success, 1 a domain error (the message goes to stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import PersistenceError

from adapters.bootstrap import Runtime, bootstrap
from adapters.cli import cases, county, events, notifications, qr, reports, scheduling, serve, tokens, views
from adapters.cli.common import EXIT_DOMAIN, EXIT_USAGE, UsageError
from adapters.settings import Settings
from adapters.store import StoreConfigError
from domain.errors import PingjingError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="pingjing", description="评警 — scan-to-rate complaint handling")
    p.add_argument("--database", help="overrides PINGJING_DATABASE (file path, sqlite:///, postgresql://, memory)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (county, cases, views, events, reports, scheduling, notifications, qr, serve, tokens):
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
    except (StoreConfigError, UsageError) as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PingjingError as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    except PersistenceError as error:
        what = "store error" if rt is not None else "the store cannot be opened"
        print(f"pingjing: {what}: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    finally:
        if rt is not None:
            rt.close()


if __name__ == "__main__":
    sys.exit(main())
