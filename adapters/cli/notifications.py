"""``notifications run|status|list|retry``: the outbox on its own, and what it holds."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import uuid
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError as PydanticValidationError

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, UsageError, add_format, check_keys
from adapters.heap import settle
from adapters.notify import pending
from adapters.notify.messages import local
from adapters.notify.outbox import TRACKING, Outbox, OutboxSummary
from domain import commands as c
from domain.application import Context
from domain.notifications import NotificationStatus
from domain.values import Actor, Channel
from projections.store import ViewStore

STATUSES = tuple(s.value for s in NotificationStatus)


def _notification_id(text: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a notification id (a UUID)") from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def register(sub: Any) -> None:
    """Add ``notifications``."""
    notes = sub.add_parser("notifications", help="the notification outbox (log, webhook, e-mail)").add_subparsers(
        dest="notifications_command", required=True, metavar="ACTION"
    )
    run = notes.add_parser("run", help="request and deliver notifications as events come (Ctrl-C stops)")
    run.add_argument("--once", action="store_true", help="one run, then print what it did")
    run.add_argument("--interval", type=_positive, default=5.0, help="seconds between runs (default 5)")
    run.add_argument(
        "--from-now", action="store_true",
        help="first start only: begin at the end of the log instead of notifying every past event",
    )
    run.set_defaults(handler=cmd_run)
    status = notes.add_parser("status", help="pending, delivered and dead notifications per channel; position, lag")
    add_format(status)
    status.set_defaults(handler=cmd_status)
    lst = notes.add_parser("list", help="the latest notifications, newest first")
    lst.add_argument("--dead", action="store_true", help="only dead letters")
    lst.add_argument("--limit", type=_limit, default=50, help="at most this many (default 50)")
    add_format(lst)
    lst.set_defaults(handler=cmd_list)
    retry = notes.add_parser("retry", help="send a dead letter again (admin)")
    retry.add_argument("id", type=_notification_id, metavar="ID", help="the notification's id (see list --dead)")
    retry.add_argument("--reason", required=True, help="why it is sent again (e.g. the webhook URL was fixed)")
    retry.add_argument("--by", required=True, help="the administrator retrying it: admin:ID")
    retry.set_defaults(handler=cmd_retry)


def _views(rt: Runtime) -> ViewStore:
    views = ViewStore.beside(rt.app)
    views.create(pending.SCHEMA)
    return views


def _said(summary: OutboxSummary) -> str:
    return (
        f"requested {summary.requested} (already {summary.already}), delivered {summary.delivered}, "
        f"failed {summary.failed}, dead {summary.dead}, refused {summary.refused}; "
        f"position {summary.position}, lag {summary.lag}"
    )


def cmd_run(rt: Runtime, args: argparse.Namespace) -> int:
    """Run the outbox once, or every ``--interval`` seconds until interrupted."""
    check_keys(rt)
    outbox = Outbox.from_runtime(rt)
    if args.from_now:
        if outbox.start_at_head():
            print(f"starting at log position {outbox.status().position}; earlier events notify nobody", file=sys.stderr)
        else:
            print("--from-now ignored: the outbox has started before (or the log is empty)", file=sys.stderr)
    if args.once:
        print(_said(outbox.run_once()))
        return EXIT_OK
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"notification outbox on {rt.store.description} ({outbox.config.source}); Ctrl-C stops", file=sys.stderr)
    settle()
    while not stop.is_set():
        try:
            summary = outbox.run_once()
        except PersistenceError as error:  # a busy or briefly unreachable store: try again next time
            structlog.get_logger("pingjing.notify").error("outbox_run_failed", reason=str(error))
        else:
            if summary.requested or summary.delivered or summary.failed or summary.dead or summary.refused:
                print(_said(summary), file=sys.stderr)
        stop.wait(args.interval)
    return EXIT_OK


def cmd_status(rt: Runtime, args: argparse.Namespace) -> int:
    """Counts per channel and status, with the outbox's position and lag."""
    views = _views(rt)
    position = views.position(TRACKING)
    head = int(rt.app.recorder.max_notification_id() or 0)
    table: dict[str, dict[str, int]] = {}
    for channel, status, count in pending.counts(views):
        table.setdefault(channel, dict.fromkeys(STATUSES, 0))[status] = count
    if args.format == "json":
        output.emit_json({"position": position, "head": head, "lag": max(head - position, 0), "channels": table})
        return EXIT_OK
    output.table(
        "Notifications",
        ("channel", *STATUSES),
        [(channel, *(counts[s] for s in STATUSES)) for channel, counts in sorted(table.items())],
    )
    print(f"outbox position {position}, head {head}, lag {max(head - position, 0)}")
    return EXIT_OK


def cmd_list(rt: Runtime, args: argparse.Namespace) -> int:
    """The latest notifications as the outbox last saw them."""
    rows = pending.listing(_views(rt), status=NotificationStatus.DEAD if args.dead else None, limit=args.limit)
    if args.format == "json":
        output.emit_json([vars(r) for r in rows])
        return EXIT_OK
    output.table(
        "Dead letters" if args.dead else "Notifications",
        ("requested", "kind", "recipient", "channel", "status", "attempts", "next", "subject", "last error", "id"),
        [
            (
                local(r.requested_at) if r.requested_at else "",
                r.kind,
                r.recipient,
                r.channel,
                r.status,
                r.attempts,
                local(r.due_at) if r.due_at and r.status == NotificationStatus.PENDING.value else "",
                r.subject,
                r.last_error or "",
                r.id,
            )
            for r in rows
        ],
    )
    return EXIT_OK


def cmd_retry(rt: Runtime, args: argparse.Namespace) -> int:
    """Give a dead letter another round of attempts; the next outbox run sends it."""
    try:
        command = c.RetryNotification(notification_id=args.id, reason=args.reason)
    except PydanticValidationError as error:
        raise UsageError(f"--reason: {error.errors()[0]['msg']}") from None
    receipt = rt.app.retry_notification(command, Context(Actor.parse(args.by), Channel.API))
    print(f"notification {args.id} is {receipt.state} again; the next outbox run sends it")
    return EXIT_OK
