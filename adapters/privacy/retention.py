"""The retention job: a closed case's contact is erased ``PINGJING_RETENTION_DAYS`` after it closed.

A county keeps a citizen's phone as long as the case may still need a call (a reopen is allowed
within 30 days of closing), and not for ever: by default 180 days after the case closed, the
citizen's key is deleted and the erasure recorded, as ``pingjing privacy erase`` does on
request (:mod:`adapters.privacy.erase`), by the system.

The case board finds the candidates cheaply (closed long enough, a contact left, no erasure on
the timeline yet); each is then checked against the case itself, which is the truth: a case
reopened since (the board may lag a moment) is open, and a case closed again has a new closing
time. Running the job again erases nothing twice. It runs as a leader-only scheduler job (once,
not once per process) and by hand (``pingjing privacy retention [--dry-run]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from adapters.privacy.erase import Erased, erase_case
from domain.application import Context, PingjingApp
from domain.errors import PingjingError
from domain.values import Actor, Channel
from domain.workflow import CaseState
from projections import board, timeline
from projections.store import ViewStore

log = structlog.get_logger("pingjing.privacy")

REASON = "retention: {days} days after the case closed (PINGJING_RETENTION_DAYS)"
SYSTEM = Context(Actor.system(), Channel.SYSTEM)


@dataclass
class RetentionRun:
    """What one run found and did."""

    cutoff: datetime
    #: Cases whose contact was due for erasure (closed before ``cutoff``, not erased yet).
    due: list[str] = field(default_factory=list)
    erased: list[Erased] = field(default_factory=list)
    #: Cases that could not be erased this time, with the reason (tried again next run).
    failed: dict[str, str] = field(default_factory=dict)


class Retention:
    """Erases the contacts of cases closed more than ``days`` days ago."""

    def __init__(self, app: PingjingApp, views: ViewStore, days: int) -> None:
        self.app = app
        self.views = views
        self.days = days

    def candidates(self, cutoff: datetime) -> list[str]:
        """Case references the board shows closed at or before ``cutoff``, with a contact not erased yet."""
        rows = self.views.query(
            f"SELECT b.case_ref FROM {board.TABLE} b WHERE b.state = 'closed' AND b.closed_at <= ? "
            f"AND EXISTS (SELECT 1 FROM {timeline.TABLE} t WHERE t.case_ref = b.case_ref AND t.event = 'Opened' "
            "AND t.details LIKE ?) "
            f"AND NOT EXISTS (SELECT 1 FROM {timeline.TABLE} e WHERE e.case_ref = b.case_ref "
            "AND e.event = 'ContactErased') ORDER BY b.closed_at",
            (board.ts(cutoff), f"%{timeline.CONTACT_KEY}%"),
        )
        return [str(r[0]) for r in rows]

    def due(self, cutoff: datetime) -> list[str]:
        """The candidates the cases themselves confirm: closed (not reopened) at or before ``cutoff``, not erased."""
        found = []
        for ref in self.candidates(cutoff):
            case = self.app.get_case(ref)
            if (
                case.state is CaseState.CLOSED
                and case.closed_at is not None
                and case.closed_at <= cutoff
                and case.contact is not None
                and case.contact_erased_at is None
            ):
                found.append(ref)
        return found

    def run_once(self, *, dry_run: bool = False) -> RetentionRun:
        """Erase every contact due now (``dry_run``: only say which)."""
        cutoff = self.app.clock.now() - timedelta(days=self.days)
        run = RetentionRun(cutoff=cutoff, due=self.due(cutoff))
        if dry_run:
            return run
        reason = REASON.format(days=self.days)
        for ref in run.due:
            try:
                run.erased.append(erase_case(self.app, ref, reason, SYSTEM))
            except PingjingError as error:
                run.failed[ref] = str(error)
                log.warning("retention_erase_failed", case_ref=ref, error=type(error).__name__, reason=str(error))
        if run.due:
            log.info("retention_done", erased=len(run.erased), failed=len(run.failed), days=self.days)
        return run
