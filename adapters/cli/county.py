"""``init``, ``run``, ``demo``, ``import`` and ``county``: the store and what is in it."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from adapters import importer, output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_DOMAIN, EXIT_OK, UsageError, add_format, current_views
from adapters.demo import DEFAULT_UNTIL, DemoError, load_demo
from adapters.heap import settle
from domain.rates import parse_period
from projections.county_state import OPEN_CASE_STATES, CountyState, fold
from projections.rates import rates


def register(sub: Any) -> None:
    """Add the subcommands."""
    sub.add_parser("init", help="create the event store if missing").set_defaults(handler=cmd_init)
    run = sub.add_parser("run", help="the main job: set up, load the demo county if empty, print the county")
    run.add_argument("--seed", type=int, default=2021)
    run.set_defaults(handler=cmd_run)

    demo = sub.add_parser("demo", help="load the Lingshou County demo into an empty store")
    demo.add_argument("--seed", type=int, default=2021, help="random seed (same seed, same county)")
    demo.add_argument(
        "--until", type=date.fromisoformat, default=None, help="last day of the 30 demo days (YYYY-MM-DD)"
    )
    demo.set_defaults(handler=cmd_demo)

    imp = sub.add_parser("import", help="apply commands from a JSON-lines file")
    imp.add_argument("file", nargs="?", type=Path)
    imp.add_argument("--schema", action="store_true", help="print the JSON Schema of a line and exit")
    imp.add_argument("--dry-run", action="store_true", help="check every line, write nothing")
    imp.add_argument("--atomic", action="store_true", help="write all lines or none")
    imp.add_argument("--progress", action="store_true",
                     help="print 'committed lines A-B' to stderr as each batch is durably written")
    imp.set_defaults(handler=cmd_import)

    county = sub.add_parser("county", help="the county's current state")
    add_format(county)
    county.set_defaults(handler=cmd_county)


def cmd_init(rt: Runtime, args: argparse.Namespace) -> int:
    """Create the store (the application creates its tables when missing)."""
    events = rt.app.recorder.max_notification_id() or 0
    print(f"store ready: {rt.store.description} ({events} events)")
    return EXIT_OK


def cmd_demo(rt: Runtime, args: argparse.Namespace) -> int:
    """Load the demo county."""
    try:
        result = load_demo(rt.app, seed=args.seed, until=args.until)
    except DemoError as error:
        raise UsageError(str(error)) from None
    print(
        f"demo county loaded: {result.units} units, {result.officers} officers, "
        f"{result.encounters} encounters, {result.ratings} ratings, {result.cases} cases, "
        f"{result.events} events"
    )
    print(f"Cao case (曹某案): {result.cao_ref}")
    return EXIT_OK


def cmd_run(rt: Runtime, args: argparse.Namespace) -> int:
    """Set up, load the demo when the store is empty, bring the views up to date, print the county."""
    print(f"store: {rt.store.description}")
    if not rt.app.recorder.max_notification_id():
        result = load_demo(rt.app, seed=args.seed, until=None)
        print(f"empty store: loaded the demo county ({result.events} events)")
        print(f"Cao case (曹某案): {result.cao_ref}  ->  pingjing case show {result.cao_ref}")
    _print_county(fold(rt.app.iter_events()), "table")
    views = current_views(rt)
    month = parse_period(f"{DEFAULT_UNTIL:%Y-%m}")
    report = rates(views, "county", month)
    output.table(
        f"County rates, {month.key} (pingjing rates --scope county --period {month.key})",
        ("rate", "value", "numerator", "denominator"),
        [(name, r.display(), r.numerator, r.denominator) for name, r in report.rates.items()],
    )
    return EXIT_OK


def cmd_import(rt: Runtime, args: argparse.Namespace) -> int:
    """Import a JSON-lines file, or print its schema."""
    if args.schema:
        output.emit_json(importer.json_schema())
        return EXIT_OK
    if args.file is None:
        raise UsageError("import needs a FILE (or --schema)")
    if not args.file.is_file():
        raise UsageError(f"no such file: {args.file}")
    run_id = f"imp-{uuid.uuid4().hex[:8]}"

    def committed(first: int, last: int) -> None:
        print(f"committed lines {first}-{last} (run {run_id})", file=sys.stderr, flush=True)

    settle()  # a long import is a busy writer: see adapters.heap
    with args.file.open(encoding="utf-8-sig") as lines:
        report = importer.run_import(rt.app, lines, run_id=run_id, atomic=args.atomic, dry_run=args.dry_run,
                                     committed=committed if args.progress else None)
    for line in report.refused:
        print(f"{args.file}:{line.number}: {line.command or 'line'} refused: {line.error}", file=sys.stderr)
    verb = ("written" if report.applied else "nothing written") if report.written else "not written"
    mode = " (dry run)" if args.dry_run else " (atomic)" if args.atomic else ""
    print(f"{report.applied} lines accepted, {len(report.refused)} refused, {verb}{mode}; run {run_id}")
    return EXIT_DOMAIN if report.refused else EXIT_OK


def cmd_county(rt: Runtime, args: argparse.Namespace) -> int:
    """Print the county's current state."""
    _print_county(fold(rt.app.iter_events()), args.format)
    return EXIT_OK


def _print_county(state: CountyState, fmt: str) -> None:
    if fmt == "json":
        output.emit_json(
            {
                "position": state.position,
                "units": [u.as_dict() for u in state.units.values()],
                "ratings": dict(state.ratings),
                "cases": len(state.cases),
            }
        )
        return
    rows = []
    for u in sorted(state.units.values(), key=lambda r: r.code):
        rated = sum(u.ratings.values())
        ok = u.ratings["satisfied"] + u.ratings["basically_satisfied"]
        open_cases = sum(n for s, n in u.cases.items() if s != "closed")
        rows.append(
            (
                u.code,
                u.name,
                u.kind,
                u.head or "-",
                u.officers,
                u.encounters,
                rated,
                f"{ok / rated:.1%}" if rated else "n/a",
                open_cases,
                u.cases["closed"],
                u.flagged_open,
            )
        )
    output.table(
        f"County state at log position {state.position} ({state.events} events)",
        (
            "unit",
            "name",
            "kind",
            "head",
            "officers",
            "encounters",
            "ratings",
            "satisfied",
            "open cases",
            "closed",
            "flagged",
        ),
        rows,
    )
    by_state = {s: sum(u.cases[s] for u in state.units.values()) for s in (*OPEN_CASE_STATES, "closed")}
    output.table("Cases by state", tuple(by_state), [tuple(by_state.values())])
