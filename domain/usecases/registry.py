"""Admin use cases: units, officers, QR identities."""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.errors import AlreadyExistsError, NotFoundError, RuleViolationError
from domain.ids import officer_id, qr_identity_id, unit_id
from domain.registry import Officer, QrIdentity, Unit
from domain.usecases.base import Receipt, Work
from domain.values import QrSubject


def load_unit(w: Work, code: str) -> Unit:
    """The unit with this code, to look at."""
    return w.uow.read(Unit, unit_id(code), "unit", code)


def load_officer(w: Work, badge: str) -> Officer:
    """The officer with this badge, to look at."""
    return w.uow.read(Officer, officer_id(badge), "officer", badge)


def register_unit(w: Work, cmd: c.RegisterUnit) -> Receipt:
    """Register a unit; its code must be new and its parent must exist."""
    if w.uow.exists(unit_id(cmd.code)):
        raise AlreadyExistsError("unit", cmd.code)
    parent = load_unit(w, cmd.parent_code) if cmd.parent_code else None
    unit = Unit(
        code=cmd.code,
        name=cmd.unit_name,
        kind=cmd.kind,
        parent_id=parent.id if parent else None,
        meta=w.meta,
    )
    w.uow.add(unit)
    return Receipt(cmd.name, unit.id, extra={"code": unit.code})


def assign_unit_head(w: Work, cmd: c.AssignUnitHead) -> Receipt:
    """Make an officer of the unit its head."""
    unit = w.uow.get(Unit, unit_id(cmd.unit_code), "unit", cmd.unit_code)
    unit.assign_head(load_officer(w, cmd.badge), w.meta)
    return Receipt(cmd.name, unit.id, extra={"code": unit.code, "head": cmd.badge})


def register_officer(w: Work, cmd: c.RegisterOfficer) -> Receipt:
    """Register an officer in an existing unit; the badge must be new."""
    if w.uow.exists(officer_id(cmd.badge)):
        raise AlreadyExistsError("officer", cmd.badge)
    unit = load_unit(w, cmd.unit_code)
    officer = Officer(badge=cmd.badge, name=cmd.officer_name, kind=cmd.kind, unit_id=unit.id, meta=w.meta)
    w.uow.add(officer)
    return Receipt(cmd.name, officer.id, extra={"badge": officer.badge})


def _step_down(w: Work, officer: Officer, reason: str) -> None:
    """An officer who heads their unit stops heading it when they leave the unit."""
    unit = w.uow.get(Unit, officer.unit_id, "unit", str(officer.unit_id))
    if unit.head_id == officer.id:
        unit.vacate_head(reason, w.meta)


def transfer_officer(w: Work, cmd: c.TransferOfficer) -> Receipt:
    """Move an officer to another unit (a head stops heading the old one)."""
    officer = w.uow.get(Officer, officer_id(cmd.badge), "officer", cmd.badge)
    new_unit = load_unit(w, cmd.unit_code)
    _step_down(w, officer, f"transferred to {new_unit.code}")
    officer.transfer(new_unit, w.meta)
    return Receipt(cmd.name, officer.id, extra={"badge": officer.badge, "unit": cmd.unit_code})


def record_officer_left(w: Work, cmd: c.RecordOfficerLeft) -> Receipt:
    """Record that an officer left; their QR identity is revoked with it."""
    officer = w.uow.get(Officer, officer_id(cmd.badge), "officer", cmd.badge)
    officer.leave(cmd.reason, w.meta)
    _step_down(w, officer, f"left: {cmd.reason}")
    qr_id = qr_identity_id(QrSubject.OFFICER, cmd.badge)
    if w.uow.exists(qr_id):
        qr = w.uow.get(QrIdentity, qr_id, "QR code", cmd.badge)
        if qr.active:
            qr.revoke(f"officer left: {cmd.reason}", w.meta)
    return Receipt(cmd.name, officer.id, extra={"badge": officer.badge})


def _subject_id(w: Work, subject: QrSubject, key: str) -> Any:
    if subject is QrSubject.UNIT:
        return load_unit(w, key).id
    officer = load_officer(w, key)
    if officer.left:
        raise RuleViolationError(f"officer {key} has left; no QR code can be issued")
    return officer.id


def issue_qr(w: Work, cmd: c.IssueQr) -> Receipt:
    """Issue a QR identity, or issue it again after a revocation."""
    subject_id = _subject_id(w, cmd.subject, cmd.key)
    qr_id = qr_identity_id(cmd.subject, cmd.key)
    if w.uow.exists(qr_id):
        qr = w.uow.get(QrIdentity, qr_id, "QR code", cmd.key)
        qr.reissue(w.meta)
    else:
        qr = QrIdentity(subject=cmd.subject, key=cmd.key, subject_id=subject_id, meta=w.meta)
        w.uow.add(qr)
    return Receipt(cmd.name, qr.id, extra={"subject": cmd.subject, "key": cmd.key, "version": qr.qr_version})


def _existing_qr(w: Work, cmd: c.IssueQr) -> QrIdentity:
    qr_id = qr_identity_id(cmd.subject, cmd.key)
    if not w.uow.exists(qr_id):
        raise NotFoundError(f"{cmd.subject} QR code", cmd.key)
    return w.uow.get(QrIdentity, qr_id, f"{cmd.subject} QR code", cmd.key)


def rotate_qr(w: Work, cmd: c.RotateQr) -> Receipt:
    """Rotate a QR identity to a new version."""
    qr = _existing_qr(w, cmd)
    if not qr.active:
        raise RuleViolationError(f"QR code of {cmd.subject} {cmd.key} is revoked; issue it again")
    qr.rotate(w.meta)
    return Receipt(cmd.name, qr.id, extra={"subject": cmd.subject, "key": cmd.key, "version": qr.qr_version})


def revoke_qr(w: Work, cmd: c.RevokeQr) -> Receipt:
    """Revoke a QR identity."""
    qr = _existing_qr(w, cmd)
    qr.revoke(cmd.reason, w.meta)
    return Receipt(cmd.name, qr.id, extra={"subject": cmd.subject, "key": cmd.key, "version": qr.qr_version})


HANDLERS: dict[type[c.Command], Any] = {
    c.RegisterUnit: register_unit,
    c.AssignUnitHead: assign_unit_head,
    c.RegisterOfficer: register_officer,
    c.TransferOfficer: transfer_officer,
    c.RecordOfficerLeft: record_officer_left,
    c.IssueQr: issue_qr,
    c.RotateQr: rotate_qr,
    c.RevokeQr: revoke_qr,
}
