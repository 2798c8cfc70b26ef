"""``projections run|status|rebuild`` and ``rates``."""

from __future__ import annotations

import argparse
import csv
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, UsageError, add_format, check_keys, current_views
from adapters.heap import settle
from domain.errors import NotFoundError
from domain.ids import officer_id, unit_id
from domain.rates import parse_period
from projections import ALL, BY_NAME
from projections.analyst import rebuild_in_memory
from projections.parallel import rebuild_in_parallel
from projections.rates import parse_scope, rates
from projections.runner import Runner
from projections.store import ViewStore


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (e.g. 2021-11-30T18:00+08:00)")
    return moment


def register(sub: Any) -> None:
    """Add ``projections`` and ``rates``."""
    proj = sub.add_parser("projections", help="the read models").add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    proj.add_parser("run", help="follow the log and keep the views current (Ctrl-C stops)").set_defaults(
        handler=cmd_run
    )
    status = proj.add_parser("status", help="each projection's position and lag")
    add_format(status)
    status.set_defaults(handler=cmd_status)
    rebuild = proj.add_parser("rebuild", help="rebuild from scratch (optionally as of a moment or position)")
    rebuild.add_argument("--only", choices=sorted(BY_NAME), help="only this projection")
    when = rebuild.add_mutually_exclusive_group()
    when.add_argument("--as-of", type=_moment, help="only what happened at or before this moment (needs --into)")
    when.add_argument("--until-position", type=int, help="only the log up to this position")
    rebuild.add_argument("--into", type=Path, help="rebuild into this SQLite file instead of the live views")
    rebuild.add_argument(
        "--jobs", type=int, default=0, help="processes (default: one per projection on a file or server store)"
    )
    rebuild.set_defaults(handler=cmd_rebuild)

    r = sub.add_parser("rates", help="the five rates and on-time rates of a scope in a period")
    r.add_argument("--scope", default="county", help="county, unit:CODE or officer:BADGE")
    r.add_argument("--period", required=True, help="ISO week (2021-W47) or month (2021-11), Asia/Shanghai")
    r.add_argument("--as-of", type=_moment, help="as they stood at this moment (rebuilt in memory)")
    add_format(r, "table", "json", "csv")
    r.set_defaults(handler=cmd_rates)


def _progress() -> tuple[Progress, Any]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=output.console(stderr=True),
        transient=False,
    )
    task = bar.add_task("rebuilding", total=None)
    return bar, lambda done, head: bar.update(task, completed=done, total=head)


def cmd_run(rt: Runtime, args: argparse.Namespace) -> int:
    """Follow the log until interrupted."""
    check_keys(rt)
    views = ViewStore.beside(rt.app)
    runner = Runner(rt.app, views, ALL, policy=rt.policy)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"following the log into {views.description}; Ctrl-C stops", file=sys.stderr)
    settle()
    runner.run_forever(stop)
    for s in runner.status():
        print(f"{s.name}: position {s.position}, lag {s.lag}", file=sys.stderr)
    return EXIT_OK


def cmd_status(rt: Runtime, args: argparse.Namespace) -> int:
    """Each projection's position and lag."""
    statuses = Runner(rt.app, ViewStore.beside(rt.app), ALL, policy=rt.policy).status()
    if args.format == "json":
        output.emit_json([{**vars(s), "lag": s.lag} for s in statuses])
        return EXIT_OK
    output.table(
        "Projections",
        ("projection", "position", "head", "lag"),
        [(s.name, s.position, s.head, s.lag) for s in statuses],
    )
    return EXIT_OK


def cmd_rebuild(rt: Runtime, args: argparse.Namespace) -> int:
    """Drop and rebuild, live or into a file of its own."""
    if args.as_of is not None and args.into is None:
        raise UsageError("--as-of rebuilds a past world; give it --into PATH so the live views stay as they are")
    if args.into is not None and args.into.exists():
        raise UsageError(f"{args.into} already exists; choose a new file")
    names = [args.only] if args.only else [p.name for p in ALL]
    jobs = args.jobs or (len(names) if rt.store.kind != "memory" else 1)
    if jobs > 1 and len(names) > 1:
        started = time.perf_counter()
        policy = rt.settings.sla_policy.read_text(encoding="utf-8") if rt.settings.sla_policy else None
        bar, progress = _progress()
        head = args.until_position or int(rt.app.recorder.max_notification_id() or 0)
        with bar:
            done = rebuild_in_parallel(
                rt.store.env, names, policy_toml=policy, until_position=args.until_position, as_of=args.as_of,
                into=args.into, progress=lambda position: progress(position, head),
            )
            progress(head, head)
        for r in done:
            print(f"rebuilt {r.name} from {r.events} events in {r.seconds:.1f} s")
        print(f"rebuilt {', '.join(names)} in {time.perf_counter() - started:.1f} s into "
              f"{args.into or 'the live views'}")
        return EXIT_OK
    views = ViewStore.sqlite_file(args.into) if args.into else ViewStore.beside(rt.app)
    runner = Runner(rt.app, views, [BY_NAME[n] for n in names], policy=rt.policy)
    runner.reset()
    bar, progress = _progress()
    with bar:
        applied = runner.catch_up(until_position=args.until_position, as_of=args.as_of, progress=progress)
    print(f"rebuilt {', '.join(names)} from {applied} events into {views.description}")
    return EXIT_OK


def cmd_rates(rt: Runtime, args: argparse.Namespace) -> int:
    """The rates of one scope and period."""
    scope = parse_scope(args.scope)
    period = parse_period(args.period)
    kind, _, key = scope.partition(":")
    if kind == "unit" and rt.app.get_aggregate(unit_id(key)) is None:
        raise NotFoundError("unit", key)
    if kind == "officer" and rt.app.get_aggregate(officer_id(key)) is None:
        raise NotFoundError("officer", key)
    views = rebuild_in_memory(rt.app, as_of=args.as_of, policy=rt.policy) if args.as_of else current_views(rt)
    report = rates(views, scope, period)
    if args.format == "json":
        output.emit_json(report.as_dict())
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(("scope", "period", "rate", "numerator", "denominator", "value"))
        for name, rate in report.rates.items():
            writer.writerow(
                (
                    scope,
                    period.key,
                    name,
                    rate.numerator,
                    rate.denominator,
                    "n/a" if rate.value is None else f"{rate.value:.6f}",
                )
            )
    else:
        output.table(
            f"Rates of {scope} in {period.key}",
            ("rate", "value", "numerator", "denominator"),
            [(n, r.display(), r.numerator, r.denominator) for n, r in report.rates.items()],
        )
        output.table("Counts", tuple(report.counts), [tuple(report.counts.values())])
    return EXIT_OK
