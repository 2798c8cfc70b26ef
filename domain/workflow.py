"""The case workflow of DESIGN §4: states, moves, SLA steps, and which role makes each move."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from domain.values import Role


class CaseState(StrEnum):
    """Where a case (督办件) stands."""

    OPEN = "open"
    PUSHED = "pushed"
    CONTACTED = "contacted"
    REPORTED = "reported"
    CALLED_BACK = "called_back"
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    VERIFIED = "verified"
    CLOSED = "closed"


OPEN_STATES = frozenset(CaseState) - {CaseState.CLOSED}


class Move(StrEnum):
    """Every move a case can make; the name appears in refusals."""

    PUSH = "push"
    CONTACT = "contact"
    REPORT = "report"
    CALLBACK = "callback"
    CALLBACK_ATTEMPT = "callback_attempt"
    SUPERVISE = "supervise"
    FLAG = "flag"
    ORDER_RECTIFICATION = "order_rectification"
    REPORT_RECTIFIED = "report_rectified"
    VERIFY = "verify"
    CLOSE = "close"
    REOPEN = "reopen"
    ACCOUNTABILITY = "accountability"
    COMMENDATION = "commendation"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"


class SlaStep(StrEnum):
    """The steps whose deadlines the SLA policy watches (DESIGN §5)."""

    PUSH = "push"
    CONTACT = "contact"
    FEEDBACK = "feedback"
    CALLBACK = "callback"
    RECTIFICATION = "rectification"
    VERIFICATION = "verification"


class CloseOutcome(StrEnum):
    """How a case ended."""

    RESOLVED = "resolved"  # after a satisfied callback or a verified rectification
    NOT_REACHED = "not_reached"  # three callback attempts found nobody
    NOT_CALLABLE = "not_callable"  # the citizen left no contact


class SupervisionTarget(StrEnum):
    """Whom the supervision office contacted while overseeing a case."""

    CITIZEN = "citizen"
    UNIT = "unit"


#: Who may make each move; unit heads additionally only on their own unit's cases.
MOVE_ROLES: dict[Move, frozenset[Role]] = {
    Move.PUSH: frozenset({Role.SYSTEM}),
    Move.CONTACT: frozenset({Role.UNIT_HEAD}),
    Move.REPORT: frozenset({Role.UNIT_HEAD}),
    Move.REPORT_RECTIFIED: frozenset({Role.UNIT_HEAD}),
    Move.CALLBACK: frozenset({Role.SUPERVISOR}),
    Move.CALLBACK_ATTEMPT: frozenset({Role.SUPERVISOR}),
    Move.SUPERVISE: frozenset({Role.SUPERVISOR}),
    Move.FLAG: frozenset({Role.SUPERVISOR}),
    Move.ORDER_RECTIFICATION: frozenset({Role.SUPERVISOR}),
    Move.VERIFY: frozenset({Role.SUPERVISOR}),
    Move.CLOSE: frozenset({Role.SUPERVISOR}),
    Move.REOPEN: frozenset({Role.SUPERVISOR}),
    Move.ACCOUNTABILITY: frozenset({Role.SUPERVISOR}),
    Move.COMMENDATION: frozenset({Role.SUPERVISOR}),
    Move.SLA_WARNING: frozenset({Role.SYSTEM}),
    Move.SLA_BREACH: frozenset({Role.SYSTEM}),
}

#: Unreachable callback attempts after which a reported case may close as not reached.
MAX_CALLBACK_ATTEMPTS = 3
#: A closed case may be reopened within this long after closing.
REOPEN_WINDOW = timedelta(days=30)
#: Rectification due date when the order gives none.
DEFAULT_RECTIFICATION_PERIOD = timedelta(days=15)
