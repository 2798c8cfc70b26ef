"""``scheduler run``: the SLA clock, the notification outbox and the report schedule, one leader at a time."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from adapters.audit.seals import seal_if_changed
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, check_keys
from adapters.foreground import NO_FOREGROUND, Foreground
from adapters.heap import settle
from adapters.notify.outbox import Outbox
from adapters.privacy.retention import Retention
from adapters.reports.publish import PUBLISH_HOUR, Reports
from domain.ids import LOCAL_TZ
from domain.reports import ReportKind
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.leader import FileLeadership, Leadership, PostgresLeadership
from scheduler.service import LeaderJob, SchedulerService

#: How often the leader checks for a report the schedule missed (the process was down at 09:00).
REPORT_CATCH_UP = timedelta(minutes=10)
#: How often the leader erases the contacts the retention period says are due.
RETENTION_EVERY = timedelta(hours=1)
#: When the leader seals the log each day (Asia/Shanghai): soon after midnight, the day's log closed.
SEAL_HOUR, SEAL_MINUTE = 0, 10
#: The scheduler's optional duties, on by default.
DUTIES = ("outbox", "reports", "retention", "seals")


def register(sub: Any) -> None:
    """Add ``scheduler run``."""
    sched = sub.add_parser("scheduler", help="the SLA clock, notifications and the report schedule").add_subparsers(
        dest="scheduler_command", required=True, metavar="ACTION"
    )
    run = sched.add_parser(
        "run",
        help="record SLA warnings and breaches as they come due, deliver notifications, publish the weekly "
        "review (Mon 09:00) and monthly bulletin (1st 09:00); Ctrl-C stops",
    )
    run.add_argument("--sync-seconds", type=float, default=5.0, help="how often to pick up new cases")
    run.add_argument("--outbox-seconds", type=float, default=5.0, help="how often to deliver notifications")
    run.add_argument(
        "--without", action="append", choices=DUTIES, default=[], help="leave a duty to another process (repeatable)"
    )
    run.set_defaults(handler=cmd_run)


def leadership_for(rt: Runtime) -> Leadership:
    """An advisory lock on PostgreSQL, a file lock beside a SQLite file (or in ./var for memory)."""
    if rt.store.kind == "postgres":
        return PostgresLeadership(rt.store.env)
    base = rt.store.path if rt.store.path is not None else Path("var") / "pingjing"
    base.parent.mkdir(parents=True, exist_ok=True)
    return FileLeadership(base.with_name(base.name + ".scheduler.lock"))


def leader_jobs(
    rt: Runtime, *, outbox_seconds: float = 5.0, without: Sequence[str] = (), foreground: Foreground = NO_FOREGROUND
) -> list[LeaderJob]:
    """The jobs only the leading scheduler runs: the outbox, the weekly and monthly reports, the retention job,
    and the daily seal of the log. The outbox steps aside for ``foreground`` (the requests of this process)."""
    jobs = []
    if "outbox" not in without:
        outbox = Outbox.from_runtime(rt, foreground=foreground)
        jobs.append(LeaderJob("outbox", IntervalTrigger(seconds=outbox_seconds), outbox.run_once))
    if "reports" not in without:
        reports = Reports(rt.app, ViewStore.beside(rt.app), rt.settings.reports_dir, policy=rt.policy)
        clock = rt.app.clock

        def publish(*kinds: ReportKind) -> Any:
            return lambda: reports.publish_due(clock.now(), kinds)

        jobs += [
            LeaderJob(
                "report-weekly",
                CronTrigger(day_of_week="mon", hour=PUBLISH_HOUR, minute=0, timezone=LOCAL_TZ),
                publish(ReportKind.WEEKLY),
            ),
            LeaderJob(
                "report-monthly",
                CronTrigger(day=1, hour=PUBLISH_HOUR, minute=0, timezone=LOCAL_TZ),
                publish(ReportKind.MONTHLY),
            ),
            # What the schedule missed while no scheduler ran, soon after this one leads.
            LeaderJob(
                "report-catch-up",
                IntervalTrigger(
                    seconds=REPORT_CATCH_UP.total_seconds(), start_date=datetime.now(UTC) + timedelta(seconds=15)
                ),
                publish(*ReportKind),
            ),
        ]
    if "retention" not in without:
        retention = Retention(rt.app, ViewStore.beside(rt.app), rt.settings.retention_days)
        jobs.append(
            LeaderJob(
                "privacy-retention",
                IntervalTrigger(
                    seconds=RETENTION_EVERY.total_seconds(), start_date=datetime.now(UTC) + timedelta(seconds=30)
                ),
                retention.run_once,
            )
        )
    if "seals" not in without and rt.store.kind != "memory":
        # A memory store keeps no chain to seal.
        app = rt.app
        jobs.append(
            LeaderJob(
                "log-seal",
                CronTrigger(hour=SEAL_HOUR, minute=SEAL_MINUTE, timezone=LOCAL_TZ),
                lambda: seal_if_changed(app),
            )
        )
    return jobs


def cmd_run(rt: Runtime, args: argparse.Namespace) -> int:
    """Run until interrupted."""
    check_keys(rt)
    views = ViewStore.beside(rt.app)
    keeper = DeadlineKeeper(rt.app, views, Runner(rt.app, views, ALL, policy=rt.policy), rt.app.clock)
    jobs = leader_jobs(rt, outbox_seconds=args.outbox_seconds, without=args.without)
    service = SchedulerService(keeper, leadership_for(rt), sync_seconds=args.sync_seconds, jobs=jobs)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    duties = ", ".join(["SLA clock", *(d for d in DUTIES if d not in args.without)])
    print(f"scheduler on {rt.store.description} ({duties}); Ctrl-C stops", file=sys.stderr)
    settle()
    service.start()
    try:
        stop.wait()
    finally:
        service.stop()
    return EXIT_OK
