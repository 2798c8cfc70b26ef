"""API tokens (admin) and the record of personal data reads (supervisor, the case's unit head)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain import commands as c
from domain.errors import AlreadyExistsError, NotFoundError, RuleViolationError
from domain.personal import ContactErasedError
from domain.tokens import ApiToken, PersonalDataRead, api_token_id
from domain.usecases.base import Receipt, Work
from domain.usecases.cases import load_case
from domain.usecases.registry import load_officer, load_unit
from domain.values import Role


def create_api_token(w: Work, cmd: c.CreateApiToken) -> Receipt:
    """Record a token; an officer's or unit head's must name a serving officer, a head's their own unit."""
    token_id = api_token_id(cmd.token_hash)
    if w.uow.exists(token_id):
        # Never echo the hash: it is as good as a name for the secret.
        raise AlreadyExistsError("API token", str(token_id))
    role = Role(cmd.role)
    if role in {Role.OFFICER, Role.UNIT_HEAD}:
        officer = load_officer(w, cmd.principal)
        if officer.left:
            raise RuleViolationError(f"officer {officer.badge} has left and gets no token")
    if role is Role.UNIT_HEAD and cmd.unit_code is not None:
        unit = load_unit(w, cmd.unit_code)
        if unit.head_badge != cmd.principal:
            raise RuleViolationError(f"officer {cmd.principal} is not the head of unit {unit.code}")
    token = ApiToken(
        token_hash=cmd.token_hash,
        role=role,
        principal=cmd.principal,
        unit_code=cmd.unit_code,
        description=cmd.label,
        meta=w.meta,
    )
    w.uow.add(token)
    return Receipt(cmd.name, token.id, extra={"role": role.value, "principal": cmd.principal, "unit": cmd.unit_code})


def revoke_api_token(w: Work, cmd: c.RevokeApiToken) -> Receipt:
    """Revoke a token by its id."""
    token = w.uow.get(ApiToken, UUID(cmd.token_id), "API token", cmd.token_id)
    token.revoke(cmd.reason, w.meta)
    return Receipt(cmd.name, token.id, extra={"revoked": True})


def record_personal_data_read(w: Work, cmd: c.RecordPersonalDataRead) -> Receipt:
    """Record a read of a case's contact; a unit head only reads their own unit's cases."""
    case = load_case(w, cmd.ref)
    if case.contact is None:
        raise NotFoundError("contact of case", case.ref)
    if case.contact.erased:  # nothing left to read, so nothing to record
        raise ContactErasedError(case.ref)
    if set(cmd.fields) == {"citizen_name"} and case.contact.name is None:
        raise NotFoundError("citizen name of case", case.ref)
    read = PersonalDataRead(
        id=w.ids.new_id(),
        case_ref=case.ref,
        case_id=case.id,
        fields=sorted(set(cmd.fields)),
        token_id=UUID(cmd.token_id) if cmd.token_id else None,
        meta=w.meta,
    )
    w.uow.add(read)
    return Receipt(cmd.name, read.id, case_ref=case.ref, state=case.state.value, extra={"fields": read.fields})


HANDLERS: dict[type[c.Command], Any] = {
    c.CreateApiToken: create_api_token,
    c.RevokeApiToken: revoke_api_token,
    c.RecordPersonalDataRead: record_personal_data_read,
}
