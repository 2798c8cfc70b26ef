"""``report weekly|monthly|verify|list``: the weekly review and monthly bulletin."""

from __future__ import annotations

import argparse
from typing import Any

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_DOMAIN, EXIT_OK, add_format
from adapters.reports.publish import Reports, due_period
from domain.application import Context
from domain.reports import ReportKind
from domain.values import Actor, Channel
from projections.store import ViewStore


def register(sub: Any) -> None:
    """Add ``report``."""
    report = sub.add_parser("report", help="the weekly review (周点评) and monthly bulletin (月通报)").add_subparsers(
        dest="report_command", required=True, metavar="ACTION"
    )
    for kind, example, what in (
        (ReportKind.WEEKLY, "2021-W47", "an ISO week (default: the last complete week)"),
        (ReportKind.MONTHLY, "2021-11", "a month (default: the last complete month)"),
    ):
        p = report.add_parser(kind.value, help=f"publish the {kind.value} report for {what}")
        p.add_argument("period", nargs="?", help=f"e.g. {example}")
        p.add_argument("--by", default="system", help="who publishes: system or supervisor:ID (default: system)")
        add_format(p, "table", "json")
        p.set_defaults(handler=cmd_publish, kind=kind)
    verify = report.add_parser("verify", help="recompute a publication from the events and compare its hash")
    verify.add_argument("name", metavar="ID", help="e.g. weekly-2021-W47 (latest edition) or weekly-2021-W47-2")
    add_format(verify, "table", "json")
    verify.set_defaults(handler=cmd_verify)


def _reports(rt: Runtime) -> Reports:
    return Reports(rt.app, ViewStore.beside(rt.app), rt.settings.reports_dir, policy=rt.policy)


def _context(by: str) -> Context:
    actor = Actor.parse(by)
    return Context(actor, Channel.SYSTEM if actor.principal == "system" else Channel.API)


def cmd_publish(rt: Runtime, args: argparse.Namespace) -> int:
    """Compute, write and record one publication."""
    kind: ReportKind = args.kind
    period = args.period.strip().upper() if args.period else due_period(kind, rt.app.clock.now())
    published = _reports(rt).publish(kind, period, _context(args.by))
    data = {
        "name": published.name,
        "kind": kind.value,
        "period": published.period,
        "edition": published.edition,
        "position": published.position,
        "content_hash": published.content_hash,
        "files": {k: str(v) for k, v in published.files.items()},
    }
    if args.format == "json":
        output.emit_json(data)
    else:
        rows = [(k, v) for k, v in data.items() if k != "files"]
        rows += [(f"file ({k})", str(v)) for k, v in published.files.items()]
        output.table(f"published {published.name}", ("field", "value"), rows)
    return EXIT_OK


def cmd_verify(rt: Runtime, args: argparse.Namespace) -> int:
    """Exit 0 when the events still give the published report, 1 when they do not."""
    result = _reports(rt).verify(args.name)
    verdict = "MATCHES" if result.matches else "DOES NOT MATCH"
    data = {
        "name": result.name,
        "position": result.position,
        "published_hash": result.published_hash,
        "recomputed_hash": result.recomputed_hash,
        "matches": result.matches,
        "file_matches": result.file_matches,
    }
    if args.format == "json":
        output.emit_json(data)
    else:
        output.table(f"report {result.name}: {verdict}", ("field", "value"), list(data.items()))
        if not result.matches:
            print(f"the events up to position {result.position} no longer give the published report: "
                  "a stored event was changed, removed or inserted")
    return EXIT_OK if result.matches else EXIT_DOMAIN

