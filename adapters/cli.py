"""The ``pingjing`` command.

Exit status: 0 success, 1 a domain error (the message goes to stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError

from adapters import importer, output
from adapters.bootstrap import Runtime, bootstrap
from adapters.casefile import case_story
from adapters.demo import DemoError, load_demo
from adapters.settings import Settings
from adapters.store import StoreConfigError
from domain.errors import NotFoundError, PingjingError
from projections.county_state import OPEN_CASE_STATES, CountyState, fold

EXIT_OK, EXIT_DOMAIN, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something that cannot be done as asked."""


def _fmt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="pingjing", description="评警 — scan-to-rate complaint handling")
    p.add_argument("--database", help="overrides PINGJING_DATABASE (file path, sqlite:///, postgresql://, memory)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("init", help="create the event store if missing")
    run = sub.add_parser("run", help="the main job: set up, load the demo county if empty, print the county")
    run.add_argument("--seed", type=int, default=2021)

    demo = sub.add_parser("demo", help="load the Lingshou County demo into an empty store")
    demo.add_argument("--seed", type=int, default=2021, help="random seed (same seed, same county)")
    demo.add_argument(
        "--until", type=date.fromisoformat, default=None, help="last day of the 30 demo days (YYYY-MM-DD)"
    )

    imp = sub.add_parser("import", help="apply commands from a JSON-lines file")
    imp.add_argument("file", nargs="?", type=Path)
    imp.add_argument("--schema", action="store_true", help="print the JSON Schema of a line and exit")
    imp.add_argument("--dry-run", action="store_true", help="check every line, write nothing")
    imp.add_argument("--atomic", action="store_true", help="write all lines or none")

    county = sub.add_parser("county", help="the county's current state")
    _fmt(county)

    case = sub.add_parser("case", help="cases").add_subparsers(dest="case_command", required=True, metavar="ACTION")
    show = case.add_parser("show", help="a case's whole story, event by event")
    show.add_argument("ref")
    _fmt(show)
    lst = case.add_parser("list", help="cases, oldest first")
    lst.add_argument(
        "--status", choices=(*OPEN_CASE_STATES, "closed", "open"), help="only this state ('open': any open state)"
    )
    lst.add_argument("--unit", help="only this unit's cases (unit code)")
    _fmt(lst)
    return p


# -- commands -------------------------------------------------------------------------------


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
    """Set up, load the demo when the store is empty, print the county."""
    print(f"store: {rt.store.description}")
    if not rt.app.recorder.max_notification_id():
        result = load_demo(rt.app, seed=args.seed, until=None)
        print(f"empty store: loaded the demo county ({result.events} events)")
        print(f"Cao case (曹某案): {result.cao_ref}  ->  pingjing case show {result.cao_ref}")
    _print_county(fold(rt.app.iter_events()), "table")
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
    with args.file.open(encoding="utf-8-sig") as lines:
        report = importer.run_import(rt.app, lines, run_id=run_id, atomic=args.atomic, dry_run=args.dry_run)
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


def cmd_case(rt: Runtime, args: argparse.Namespace) -> int:
    """``case show`` and ``case list``."""
    if args.case_command == "show":
        case, steps = case_story(rt.app, args.ref)
        if args.format == "json":
            output.emit_json({"ref": case.ref, "state": case.state.value, "round": case.round, "steps": steps})
            return EXIT_OK
        flag = f", flagged ({case.flag_reason})" if case.flagged else ""
        where = f"{case.kind.value} via {case.intake.value}"
        print(f"Case {case.ref}: {where}, now {case.state.value}, round {case.round}{flag}")
        output.table(
            f"History of {case.ref}",
            ("#", "time (Asia/Shanghai)", "event", "actor", "state after", "details"),
            [(s.number, s.at, f"{s.label_zh} {s.label_en}", s.actor, s.state_after, s.details) for s in steps],
        )
        return EXIT_OK
    state = fold(rt.app.iter_events())
    cases = state.cases
    if args.unit:
        if args.unit.upper() not in state.units:
            raise NotFoundError("unit", args.unit)
        cases = [r for r in cases if r.unit_code == args.unit.upper()]
    if args.status == "open":
        cases = [r for r in cases if r.state != "closed"]
    elif args.status:
        cases = [r for r in cases if r.state == args.status]
    if args.format == "json":
        output.emit_json(cases)
        return EXIT_OK
    output.table(
        f"{len(cases)} cases",
        ("ref", "kind", "intake", "unit", "state", "round", "flagged", "opened", "summary"),
        [
            (
                r.ref,
                r.kind,
                r.intake,
                r.unit_code,
                r.state,
                r.round,
                "挂牌" if r.flagged else "",
                f"{r.opened_at:%Y-%m-%d %H:%M}",
                r.summary[:40],
            )
            for r in cases
        ],
    )
    return EXIT_OK


COMMANDS: dict[str, Callable[[Runtime, argparse.Namespace], int]] = {
    "init": cmd_init,
    "run": cmd_run,
    "demo": cmd_demo,
    "import": cmd_import,
    "county": cmd_county,
    "case": cmd_case,
}


def main(argv: Sequence[str] | None = None, *, runtime_factory: Callable[[Settings], Runtime] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"database": args.database} if args.database else {}
    try:
        settings = Settings(**overrides)
        rt = (runtime_factory or bootstrap)(settings)
    except StoreConfigError as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PersistenceError as error:
        print(f"pingjing: the store cannot be opened: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    try:
        return COMMANDS[args.command](rt, args)
    except UsageError as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PingjingError as error:
        print(f"pingjing: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    except PersistenceError as error:
        print(f"pingjing: store error: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    finally:
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
