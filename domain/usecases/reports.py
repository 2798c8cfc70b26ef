"""Publishing a report: the next edition of its period, with its hash and log position."""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.errors import RuleViolationError
from domain.reports import Report, ReportKind, report_id, report_name
from domain.usecases.base import Receipt, Work

#: More editions of one period than this means something is republishing in a loop.
MAX_EDITIONS = 99


def publish_report(w: Work, cmd: c.PublishReport) -> Receipt:
    """Record a publication as the next edition of the report for its period."""
    kind = ReportKind(cmd.kind)
    edition = next((n for n in range(1, MAX_EDITIONS + 1) if not w.uow.exists(report_id(kind, cmd.period, n))), None)
    if edition is None:
        raise RuleViolationError(f"{kind.value} report {cmd.period} already has {MAX_EDITIONS} editions")
    report = Report(
        kind=kind,
        period=cmd.period,
        edition=edition,
        title=cmd.title,
        position=cmd.position,
        content_hash=cmd.content_hash,
        meta=w.meta,
    )
    w.uow.add(report)
    return Receipt(cmd.name, report.id, extra={"name": report_name(kind, cmd.period, edition), "edition": edition})


HANDLERS: dict[type[c.Command], Any] = {c.PublishReport: publish_report}
