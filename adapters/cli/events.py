"""``events export``: the log for analysts, personal data redacted."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, UsageError
from adapters.cli.views import _moment
from adapters.export import FORMATS, ExportError, ExportFilter, export_events, known_event_types


def register(sub: Any) -> None:
    """Add ``events export``."""
    events = sub.add_parser("events", help="the event log").add_subparsers(
        dest="events_command", required=True, metavar="ACTION"
    )
    exp = events.add_parser("export", help="export events (phones and names never in clear)")
    exp.add_argument("--format", choices=FORMATS, default="jsonl")
    exp.add_argument("--since", type=_moment, help="events that happened at or after this moment")
    exp.add_argument("--until", type=_moment, help="events that happened before this moment")
    exp.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="TYPE",
        help=f"only this event type (repeatable), e.g. Case.Opened; one of: {', '.join(known_event_types())}",
    )
    exp.add_argument("--output", "-o", type=Path, help="write here instead of standard output")
    exp.set_defaults(handler=cmd_export)


def cmd_export(rt: Runtime, args: argparse.Namespace) -> int:
    """Write the filtered events."""
    flt = ExportFilter(since=args.since, until=args.until, types=frozenset(args.type))
    if args.format == "parquet" and args.output is None:
        raise UsageError("parquet needs --output PATH")
    try:
        target: Any = args.output if args.output is not None else sys.stdout.buffer
        count = export_events(rt.app.iter_events(), target, args.format, flt)
    except ExportError as error:
        raise UsageError(str(error)) from None
    print(f"exported {count} events", file=sys.stderr)
    return EXIT_OK
