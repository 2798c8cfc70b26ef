"""Reading cases: the board, one case's history, and (recorded first) a case's contact.

Who reads what (DESIGN §1): the supervision office every case; a unit head only their own
unit's cases (another unit's case is a 403 naming the unit, as for a move on it); an auditor
every case, with citizens shown by their role alone; officers and administrators no case at
all. Board rows and histories leave scrubbed of the case's contact and of phone-shaped numbers
(:mod:`adapters.http.privacy`) for everyone: the contact itself is read, on record, from
``/cases/{ref}/contact``. A contact whose citizen's data were erased is not there to read: that
read is refused (404, ``what``: ``erased contact of case``, saying it was erased) and recorded
nowhere, as a case without a contact is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.http.auth import Staff, allow, check_unit_head, documented
from adapters.http.errors import ERROR_RESPONSES
from adapters.http.privacy import public_actor, redact
from adapters.http.services import Services, services
from domain import commands as c
from domain.errors import NotFoundError, ValidationError
from domain.ids import check_case_ref, unit_id
from domain.permissions import ALLOWED_ROLES
from domain.personal import ContactErasedError
from domain.tokens import TOKEN_ROLES
from domain.values import Role
from domain.workflow import CaseState
from projections import board, ledger
from projections.cases import audit_of
from projections.timeline import timeline

CASE_READERS = frozenset({Role.SUPERVISOR, Role.UNIT_HEAD, Role.AUDITOR})
CONTACT_READERS = ALLOWED_ROLES[c.RecordPersonalDataRead] & TOKEN_ROLES
BOARD_STATES = (*(s.value for s in CaseState), "open")
UNIT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{1,31}$"


class BoardRowOut(BaseModel):
    """A case on the board: where it stands and what it waits on."""

    ref: str
    kind: str
    intake: str
    unit_code: str
    officer_badge: str
    state: str
    round: int
    flagged: bool
    opened_at: datetime
    closed_at: datetime | None
    waiting: list[str]
    deadlines: dict[str, datetime]
    next_deadline: datetime | None
    overdue: list[str]
    summary: str

    @classmethod
    def of(cls, row: board.BoardRow, now: datetime) -> BoardRowOut:
        """The board row with the steps overdue at ``now``."""
        return cls(**vars(row), overdue=row.overdue_steps(now))


class CaseOut(BaseModel):
    """One case: its board row, its history event by event, its SLA ledger and audit score."""

    case: BoardRowOut
    timeline: list[dict[str, Any]]
    sla: list[dict[str, Any]]
    audit: dict[str, Any] | None


class ContactOut(BaseModel):
    """A case's contact, unmasked; reading it was recorded as ``read_id``."""

    case_ref: str
    phone: str
    citizen_name: str | None
    read_id: str


def read_board(
    staff: Annotated[Staff, Depends(allow(CASE_READERS, "read the case board"))],
    svc: Annotated[Services, Depends(services)],
    state: Annotated[str | None, Query(description=f"one of {', '.join(BOARD_STATES)}")] = None,
    unit: Annotated[str | None, Query(pattern=UNIT_PATTERN, description="a unit's code")] = None,
    overdue: Annotated[bool, Query(description="only cases with a deadline already passed")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[BoardRowOut]:
    """Cases on the board, oldest first (overdue: most overdue first); a unit head sees their unit's only."""
    if state is not None and state not in BOARD_STATES:
        raise ValidationError(f"state {state!r} must be one of {', '.join(BOARD_STATES)}")
    code = unit.upper() if unit else None
    if staff.role is Role.UNIT_HEAD:
        code = code or staff.unit_code
        check_unit_head(svc, staff, code or "", f"the board of unit {code}")
    elif code and svc.app.get_aggregate(unit_id(code)) is None:
        raise NotFoundError("unit", code)
    views = svc.current_views()
    now = svc.app.clock.now()
    found = board.cases(views, state=state, unit=code, overdue_at=now if overdue else None, limit=limit)
    rows = [BoardRowOut.of(r, now) for r in found]
    return [_scrubbed(svc, r) for r in rows]


def _scrubbed(svc: Services, row: BoardRowOut) -> BoardRowOut:
    """A board row whose summary holds neither the case's contact nor anything like a phone."""
    return BoardRowOut.model_validate(redact(row.model_dump(mode="json"), [svc.app.get_case(row.ref).contact]))


def read_case(
    ref: str,
    staff: Annotated[Staff, Depends(allow(CASE_READERS, "read case histories"))],
    svc: Annotated[Services, Depends(services)],
) -> CaseOut:
    """A case's whole story from the timeline (phones masked), its SLA ledger and procedural audit score."""
    ref = check_case_ref(ref)
    views = svc.current_views()
    row = board.case_row(views, ref)
    if row is None:
        raise NotFoundError("case", ref)
    if staff.role is Role.UNIT_HEAD:
        check_unit_head(svc, staff, row.unit_code, f"case {ref}")
    audit = audit_of(views, ref)
    lines = [vars(line) for line in timeline(views, ref)]
    out = CaseOut(
        case=BoardRowOut.of(row, svc.app.clock.now()),
        timeline=lines,
        sla=[vars(step) for step in ledger.steps_of(views, ref)],
        audit={"score": audit.score, "deductions": audit.deductions, "explained": audit.explained()} if audit else None,
    )
    data = out.model_dump(mode="json")
    if staff.role is Role.AUDITOR:
        for line in data["timeline"]:
            line["actor"] = public_actor(line["actor"], line["role"])
    return CaseOut.model_validate(redact(data, [svc.app.get_case(ref).contact]))


def read_contact(
    request: Request,
    ref: str,
    staff: Annotated[Staff, Depends(allow(CONTACT_READERS, "read a citizen's contact"))],
    svc: Annotated[Services, Depends(services)],
) -> JSONResponse:
    """The citizen's phone and name, unmasked; the read is recorded as an event before they are sent.

    Refused when the case has no contact, or when its citizen's data were erased (nothing is recorded then).
    """
    ref = check_case_ref(ref)
    contact = svc.app.get_case(ref).contact
    fields = ["phone", "citizen_name"] if contact is not None and contact.name else ["phone"]
    command = c.RecordPersonalDataRead(ref=ref, fields=fields, token_id=str(staff.token_id))
    # The use case checks the role and the unit, and refuses a case without a contact or with an
    # erased one: nothing is sent unless the read is on record.
    receipt = svc.app.execute(command, staff.context(request))
    if contact is None:  # the use case refuses this already; never send what is not on record
        raise NotFoundError("contact of case", ref)
    if contact.phone is None:  # erased: refused by the use case too
        raise ContactErasedError(ref)
    body = ContactOut(case_ref=ref, phone=contact.phone, citizen_name=contact.name, read_id=str(receipt.aggregate_id))
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


def router() -> APIRouter:
    """The case-reading routes under ``/api/v1``."""
    api = APIRouter(prefix="/api/v1", tags=["cases (reading)"], responses=ERROR_RESPONSES)
    api.add_api_route("/cases", read_board, response_model=list[BoardRowOut], **documented(read_board, CASE_READERS))
    api.add_api_route("/cases/{ref}", read_case, response_model=CaseOut, **documented(read_case, CASE_READERS))
    api.add_api_route(
        "/cases/{ref}/contact", read_contact, response_model=ContactOut, **documented(read_contact, CONTACT_READERS)
    )
    return api
