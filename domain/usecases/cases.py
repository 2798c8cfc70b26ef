"""Case moves: the unit's steps, the office's supervision, the scheduler's SLA records."""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.case import Case
from domain.errors import PermissionDeniedError
from domain.ids import case_id
from domain.registry import Unit
from domain.usecases.base import Receipt, Work
from domain.usecases.registry import load_officer, load_unit
from domain.values import Role
from domain.workflow import DEFAULT_RECTIFICATION_PERIOD


def load_case(w: Work, ref: str) -> Case:
    """The case to move; a unit head may only move their own unit's cases."""
    case = w.uow.get(Case, case_id(ref), "case", ref)
    if w.actor.role is Role.UNIT_HEAD:
        unit = w.uow.read(Unit, case.unit_id, "unit", str(case.unit_id))
        if unit.head_badge != w.actor.principal:
            raise PermissionDeniedError(f"{w.actor} is not the head of unit {unit.code}, to which case {ref} belongs")
    return case


def _done(cmd: c.CaseCommand, case: Case) -> Receipt:
    return Receipt(cmd.name, case.id, case_ref=case.ref, state=case.state.value)


def contact_citizen(w: Work, cmd: c.ContactCitizen) -> Receipt:
    """The unit head contacted the citizen."""
    case = load_case(w, cmd.ref)
    case.contact_citizen(cmd.note, w.meta)
    return _done(cmd, case)


def report_result(w: Work, cmd: c.ReportResult) -> Receipt:
    """The unit reports its handling result to the office."""
    case = load_case(w, cmd.ref)
    case.report_result(cmd.result, w.meta)
    return _done(cmd, case)


def record_callback(w: Work, cmd: c.RecordCallback) -> Receipt:
    """The office reached the citizen on a callback."""
    case = load_case(w, cmd.ref)
    case.record_callback(cmd.satisfied, cmd.note, w.meta)
    return _done(cmd, case)


def record_callback_attempt(w: Work, cmd: c.RecordCallbackAttempt) -> Receipt:
    """A callback attempt that did not reach the citizen."""
    case = load_case(w, cmd.ref)
    case.record_callback_attempt(cmd.note, w.meta)
    return _done(cmd, case)


def record_supervision(w: Work, cmd: c.RecordSupervision) -> Receipt:
    """The office's own contact while supervising the case."""
    case = load_case(w, cmd.ref)
    case.supervise(cmd.target, cmd.note, w.meta)
    return _done(cmd, case)


def flag_case(w: Work, cmd: c.FlagCase) -> Receipt:
    """Listed supervision (挂牌督办)."""
    case = load_case(w, cmd.ref)
    case.flag(cmd.reason, w.meta)
    return _done(cmd, case)


def order_rectification(w: Work, cmd: c.OrderRectification) -> Receipt:
    """Order rectification by the given date, by default in 15 days."""
    case = load_case(w, cmd.ref)
    due_at = cmd.due_at or w.now + DEFAULT_RECTIFICATION_PERIOD
    case.order_rectification(cmd.instructions, due_at, w.meta)
    return _done(cmd, case)


def report_rectified(w: Work, cmd: c.ReportRectified) -> Receipt:
    """The unit reports the rectification done."""
    case = load_case(w, cmd.ref)
    case.report_rectified(cmd.note, w.meta)
    return _done(cmd, case)


def verify_rectification(w: Work, cmd: c.VerifyRectification) -> Receipt:
    """The office verified the rectification; a failure sends it back with a new due date."""
    case = load_case(w, cmd.ref)
    new_due = cmd.new_due_at
    if not cmd.implemented and new_due is None:
        new_due = w.now + DEFAULT_RECTIFICATION_PERIOD
    case.verify(cmd.implemented, cmd.note, new_due, w.meta)
    return _done(cmd, case)


def close_case(w: Work, cmd: c.CloseCase) -> Receipt:
    """Close a case with its resolution."""
    case = load_case(w, cmd.ref)
    case.close(cmd.resolution, cmd.citizen_accepted, w.meta)
    return _done(cmd, case)


def reopen_case(w: Work, cmd: c.ReopenCase) -> Receipt:
    """Reopen a case for a new round."""
    case = load_case(w, cmd.ref)
    case.reopen(cmd.reason, w.meta)
    return _done(cmd, case)


def record_accountability(w: Work, cmd: c.RecordAccountability) -> Receipt:
    """Record an accountability measure against a named officer."""
    case = load_case(w, cmd.ref)
    officer = load_officer(w, cmd.badge)
    case.record_accountability(officer.id, cmd.measure, cmd.note, w.meta)
    return _done(cmd, case)


def record_commendation(w: Work, cmd: c.RecordCommendation) -> Receipt:
    """Record a commendation for an officer or unit (by default the case's unit)."""
    case = load_case(w, cmd.ref)
    officer = load_officer(w, cmd.badge) if cmd.badge else None
    unit_id = load_unit(w, cmd.unit_code).id if cmd.unit_code else None
    if officer is None and unit_id is None:
        unit_id = case.unit_id
    case.record_commendation(cmd.kind, officer.id if officer else None, unit_id, cmd.note, w.meta)
    return _done(cmd, case)


def record_sla_warning(w: Work, cmd: c.RecordSlaWarning) -> Receipt:
    """The scheduler's warning at 80 % of a step's limit."""
    case = load_case(w, cmd.ref)
    case.record_sla_warning(cmd.step, cmd.round, w.meta)
    return _done(cmd, case)


def record_sla_breach(w: Work, cmd: c.RecordSlaBreach) -> Receipt:
    """The scheduler's breach at a step's limit."""
    case = load_case(w, cmd.ref)
    case.record_sla_breach(cmd.step, cmd.round, w.meta)
    return _done(cmd, case)


HANDLERS: dict[type[c.Command], Any] = {
    c.ContactCitizen: contact_citizen,
    c.ReportResult: report_result,
    c.RecordCallback: record_callback,
    c.RecordCallbackAttempt: record_callback_attempt,
    c.RecordSupervision: record_supervision,
    c.FlagCase: flag_case,
    c.OrderRectification: order_rectification,
    c.ReportRectified: report_rectified,
    c.VerifyRectification: verify_rectification,
    c.CloseCase: close_case,
    c.ReopenCase: reopen_case,
    c.RecordAccountability: record_accountability,
    c.RecordCommendation: record_commendation,
    c.RecordSlaWarning: record_sla_warning,
    c.RecordSlaBreach: record_sla_breach,
}
