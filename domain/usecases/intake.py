"""Intake use cases: encounters, ratings and directly opened cases (三个一: pushed at once)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain import commands as c
from domain.case import Case
from domain.encounters import Encounter, EncounterCode
from domain.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDeniedError,
    QrCodeRefusedError,
    RuleViolationError,
    ValidationError,
)
from domain.ids import device_ballot_id, encounter_code_id, encounter_id, qr_identity_id
from domain.ratings import DeviceBallot, Rating, case_kind_for
from domain.registry import QrIdentity
from domain.usecases.base import Receipt, Work
from domain.usecases.registry import load_officer, load_unit
from domain.values import CaseKind, Channel, Contact, QrSubject, Role

CITIZEN_REF_LENGTH = 12
DISSATISFIED_SUMMARY = "群众评价不满意 (dissatisfied rating)"


def _log_one(w: Work, e: c.LogEncounter) -> Encounter:
    if w.actor.role is Role.OFFICER and e.badge != w.actor.principal:
        raise PermissionDeniedError(f"{w.actor} may only log their own encounters")
    if e.happened_at > w.now:
        raise ValidationError(f"encounter time {e.happened_at.isoformat()} is after the time it is logged")
    officer = load_officer(w, e.badge) if e.badge else None
    if officer is not None and officer.left:
        raise RuleViolationError(f"officer {e.badge} has left")
    if e.unit_code is not None:
        unit_id = load_unit(w, e.unit_code).id
    elif officer is not None:
        unit_id = officer.unit_id
    else:
        raise ValidationError("an encounter needs a badge or a unit_code")
    if e.external_ref is not None:
        new_id = encounter_id(e.external_ref)
        if w.uow.exists(new_id):
            raise AlreadyExistsError("encounter", e.external_ref)
    else:
        new_id = w.ids.new_id()
    encounter = Encounter(
        id=new_id,
        kind=e.kind,
        officer_id=officer.id if officer else None,
        unit_id=unit_id,
        happened_at=e.happened_at,
        external_ref=e.external_ref,
        has_code=e.code is not None,
        meta=w.meta,
    )
    w.uow.add(encounter)
    if e.code is not None:
        if w.uow.exists(encounter_code_id(e.code)):
            raise AlreadyExistsError("encounter code", e.code)
        w.uow.add(
            EncounterCode.issue(
                code=e.code,
                encounter_id=encounter.id,
                officer_id=encounter.officer_id,
                unit_id=unit_id,
                happened_at=e.happened_at,
                meta=w.meta,
            )
        )
    return encounter


def log_encounter(w: Work, cmd: c.LogEncounter) -> Receipt:
    """Log one encounter, with its one-time code if it has one."""
    encounter = _log_one(w, cmd)
    return Receipt(cmd.name, encounter.id, extra={"kind": cmd.kind})


def log_encounters(w: Work, cmd: c.LogEncounters) -> Receipt:
    """Log many encounters, all or none."""
    logged = [_log_one(w, e) for e in cmd.encounters]
    return Receipt(cmd.name, None, extra={"logged": len(logged)})


def _contact(w: Work, phone: str | None, name: str | None) -> Contact | None:
    if phone is None:
        return None
    return Contact(citizen_ref=w.ids.new_token(CITIZEN_REF_LENGTH), phone=phone, name=name)


def _open_and_push(
    w: Work,
    kind: CaseKind,
    intake: Channel,
    unit_id: UUID,
    officer_id: UUID | None,
    rating_id: UUID | None,
    summary: str,
    contact: Contact | None,
) -> Case:
    case = Case(
        ref=w.new_case_ref(),
        kind=kind,
        intake=intake,
        unit_id=unit_id,
        officer_id=officer_id,
        rating_id=rating_id,
        summary=summary,
        contact=contact,
        meta=w.meta,
    )
    case.push(w.system_meta())
    w.uow.add(case)
    return case


def _check_code(w: Work, target: QrSubject, key: str, version: int) -> None:
    """The scanned code must be the identity's current one, in the same transaction as the rating."""
    what = f"{target.value} {key}"
    try:
        identity = w.uow.read(QrIdentity, qr_identity_id(target, key), "QR identity", what)
    except NotFoundError:
        raise QrCodeRefusedError(what, "unknown") from None
    if version > identity.qr_version:
        raise QrCodeRefusedError(what, "unknown")
    if not identity.active:
        raise QrCodeRefusedError(what, "revoked")
    if version < identity.qr_version:
        raise QrCodeRefusedError(what, "rotated")


def _cast_ballot(w: Work, device_hash: str, target_id: UUID, rating_id: UUID, what: str) -> None:
    """One rating per device per officer or unit per window: refuse a repeat, or record this one."""
    ballot_id = device_ballot_id(device_hash, target_id)
    if w.uow.exists(ballot_id):
        ballot = w.uow.get(DeviceBallot, ballot_id, "device ballot", what)
        ballot.check(what, w.now, w.rating_window)
        ballot.cast(rating_id, w.meta)
    else:
        w.uow.add(DeviceBallot(id=ballot_id, target_id=target_id, rating_id=rating_id, meta=w.meta))


def submit_rating(w: Work, cmd: c.SubmitRating) -> Receipt:
    """Record a rating; a dissatisfied one, a complaint or a suggestion opens and pushes a case."""
    if cmd.target is QrSubject.OFFICER:
        officer = load_officer(w, cmd.key)
        if officer.left:
            raise RuleViolationError(f"officer {cmd.key} has left; this code is no longer in use")
        target_id, unit_id, officer_id = officer.id, officer.unit_id, officer.id
    else:
        unit = load_unit(w, cmd.key)
        target_id, unit_id, officer_id = unit.id, unit.id, None
    if cmd.qr_version is not None:
        _check_code(w, cmd.target, cmd.key, cmd.qr_version)
    rating_id = w.ids.new_id()
    if cmd.device_hash is not None and w.rating_window:
        _cast_ballot(w, cmd.device_hash, target_id, rating_id, f"{cmd.target.value} {cmd.key}")
    linked_encounter = None
    if cmd.encounter_code is not None:
        code = w.uow.get(EncounterCode, encounter_code_id(cmd.encounter_code), "encounter code", cmd.encounter_code)
        code.redeem(rating_id, officer_id, unit_id, w.meta)
        linked_encounter = code.encounter_id
    kind = case_kind_for(cmd.verdict, cmd.complaint, cmd.suggestion)
    case = None
    if kind is not None:
        parts = [p for p in (cmd.complaint, cmd.suggestion, cmd.comment) if p]
        case = _open_and_push(
            w,
            kind,
            w.meta.channel,
            unit_id,
            officer_id,
            rating_id,
            "\n".join(parts) or DISSATISFIED_SUMMARY,
            _contact(w, cmd.phone, cmd.citizen_name),
        )
    rating = Rating(
        id=rating_id,
        target=cmd.target,
        target_id=target_id,
        unit_id=unit_id,
        officer_id=officer_id,
        verdict=cmd.verdict,
        service_score=cmd.service_score,
        attitude_score=cmd.attitude_score,
        efficiency_score=cmd.efficiency_score,
        comment=cmd.comment,
        complaint=cmd.complaint,
        suggestion=cmd.suggestion,
        encounter_id=linked_encounter,
        device_hash=cmd.device_hash,
        case_ref=case.ref if case else None,
        meta=w.meta,
    )
    w.uow.add(rating)
    return Receipt(
        cmd.name,
        rating.id,
        case_ref=case.ref if case else None,
        state=case.state.value if case else None,
        extra={"verified": linked_encounter is not None},
    )


def open_case(w: Work, cmd: c.OpenCase) -> Receipt:
    """Open a case from the hotline, a meeting, a letter or a home visit, and push it."""
    unit = load_unit(w, cmd.unit_code)
    officer = load_officer(w, cmd.badge) if cmd.badge else None
    case = _open_and_push(
        w,
        cmd.kind,
        Channel(cmd.intake),
        unit.id,
        officer.id if officer else None,
        None,
        cmd.summary,
        _contact(w, cmd.phone, cmd.citizen_name),
    )
    return Receipt(cmd.name, case.id, case_ref=case.ref, state=case.state.value)


HANDLERS: dict[type[c.Command], Any] = {
    c.LogEncounter: log_encounter,
    c.LogEncounters: log_encounters,
    c.SubmitRating: submit_rating,
    c.OpenCase: open_case,
}
