"""``scheduler run``: the SLA clock on its own."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.leader import FileLeadership, Leadership, PostgresLeadership
from scheduler.service import SchedulerService


def register(sub: Any) -> None:
    """Add ``scheduler run``."""
    sched = sub.add_parser("scheduler", help="the SLA clock").add_subparsers(
        dest="scheduler_command", required=True, metavar="ACTION"
    )
    run = sched.add_parser("run", help="record SLA warnings and breaches as they come due (Ctrl-C stops)")
    run.add_argument("--sync-seconds", type=float, default=5.0, help="how often to pick up new cases")
    run.set_defaults(handler=cmd_run)


def leadership_for(rt: Runtime) -> Leadership:
    """An advisory lock on PostgreSQL, a file lock beside a SQLite file (or in ./var for memory)."""
    if rt.store.kind == "postgres":
        return PostgresLeadership(rt.store.env)
    base = rt.store.path if rt.store.path is not None else Path("var") / "pingjing"
    base.parent.mkdir(parents=True, exist_ok=True)
    return FileLeadership(base.with_name(base.name + ".scheduler.lock"))


def cmd_run(rt: Runtime, args: argparse.Namespace) -> int:
    """Run until interrupted."""
    views = ViewStore.beside(rt.app)
    keeper = DeadlineKeeper(rt.app, views, Runner(rt.app, views, ALL, policy=rt.policy), rt.app.clock)
    service = SchedulerService(keeper, leadership_for(rt), sync_seconds=args.sync_seconds)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"scheduler on {rt.store.description}; Ctrl-C stops", file=sys.stderr)
    service.start()
    try:
        stop.wait()
    finally:
        service.stop()
    return EXIT_OK
