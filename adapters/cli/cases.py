"""``case show`` and ``case list``: read from the case projections."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, add_format, current_views
from domain.errors import NotFoundError
from domain.ids import check_case_ref, unit_id
from domain.workflow import CaseState
from projections import board, ledger
from projections.cases import audit_of
from projections.timeline import local, timeline


def register(sub: Any) -> None:
    """Add ``case show`` and ``case list``."""
    case = sub.add_parser("case", help="cases").add_subparsers(dest="case_command", required=True, metavar="ACTION")
    show = case.add_parser("show", help="a case's whole story, event by event")
    show.add_argument("ref")
    add_format(show)
    show.set_defaults(handler=cmd_show)
    lst = case.add_parser("list", help="cases on the board, oldest first")
    lst.add_argument(
        "--status", choices=(*(s.value for s in CaseState), "open"), help="only this state ('open': any open state)"
    )
    lst.add_argument("--unit", help="only this unit's cases (unit code)")
    lst.add_argument(
        "--overdue", action="store_true", help="only cases with a deadline already passed, most overdue first"
    )
    add_format(lst)
    lst.set_defaults(handler=cmd_list)


def cmd_show(rt: Runtime, args: argparse.Namespace) -> int:
    """The case's history from the timeline projection, with its SLA ledger and audit score."""
    ref = check_case_ref(args.ref)
    views = current_views(rt)
    row = board.case_row(views, ref)
    if row is None:
        raise NotFoundError("case", ref)
    lines = timeline(views, ref)
    steps = ledger.steps_of(views, ref)
    audit = audit_of(views, ref)
    if args.format == "json":
        output.emit_json(
            {
                "ref": ref,
                "state": row.state,
                "round": row.round,
                "flagged": row.flagged,
                "steps": [
                    {"number": line.seq, **{k: v for k, v in vars(line).items() if k != "seq"}} for line in lines
                ],
                "sla": [vars(s) for s in steps],
                "audit": {"score": audit.score, "deductions": audit.deductions} if audit else None,
            }
        )
        return EXIT_OK
    flag = ", flagged" if row.flagged else ""
    print(f"Case {ref}: {row.kind} via {row.intake}, now {row.state}, round {row.round}{flag}")
    output.table(
        f"History of {ref}",
        ("#", "time (Asia/Shanghai)", "event", "actor", "state after", "details", "SLA at that moment"),
        [(x.seq, x.at, f"{x.label_zh} {x.label_en}", x.actor, x.state_after, x.details, x.sla) for x in lines],
    )
    output.table(
        "SLA ledger",
        ("step", "round", "started", "deadline", "ended", "status", "warned", "breached"),
        [
            (
                s.step,
                s.round,
                local(s.started_at),
                local(s.deadline),
                local(s.ended_at) if s.ended_at else "",
                s.status,
                local(s.warned_at) if s.warned_at else "",
                local(s.breached_at) if s.breached_at else "",
            )
            for s in steps
        ],
    )
    if audit is not None:
        print(f"Procedural audit score (案卷评查): {audit.score}/100" + "".join(f"\n  {d}" for d in audit.explained()))
    return EXIT_OK


def cmd_list(rt: Runtime, args: argparse.Namespace) -> int:
    """Cases on the board, filtered."""
    unit = args.unit.upper() if args.unit else None
    if unit and rt.app.get_aggregate(unit_id(unit)) is None:
        raise NotFoundError("unit", args.unit)
    views = current_views(rt)
    now = rt.app.clock.now()
    rows = board.cases(views, state=args.status, unit=unit, overdue_at=now if args.overdue else None)
    if args.format == "json":
        output.emit_json([{**vars(r), "overdue": r.overdue_steps(now)} for r in rows])
        return EXIT_OK
    output.table(
        f"{len(rows)} cases" + (f" overdue at {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if args.overdue else ""),
        (
            "ref",
            "kind",
            "intake",
            "unit",
            "state",
            "round",
            "flagged",
            "opened",
            "waiting on",
            "next deadline",
            "summary",
        ),
        [
            (
                r.ref,
                r.kind,
                r.intake,
                r.unit_code,
                r.state,
                r.round,
                "挂牌" if r.flagged else "",
                local(r.opened_at),
                ",".join(r.waiting),
                _due(r.next_deadline, now),
                r.summary[:30],
            )
            for r in rows
        ],
    )
    return EXIT_OK


def _due(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return ""
    return f"{local(deadline)}{' OVERDUE' if deadline < now else ''}"
