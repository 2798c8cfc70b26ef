"""The case board, a case's page, its moves as forms, and the recorded reveal of a citizen's contact.

Everything is read through the staff API's own functions, with the same rules: the board
(:func:`adapters.http.cases.read_board`: a unit head their unit's cases only), a case's story
(:func:`~adapters.http.cases.read_case`: phones masked, an auditor sees citizens by role only),
the contact (:func:`~adapters.http.cases.read_contact`: the read is recorded as an event before
anything is shown). A move posted from a form runs its command as the signed-in actor on the
console channel; a refusal shows the case again with the reason, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError as PydanticValidationError

from adapters.http.auth import allow
from adapters.http.cases import (
    BOARD_STATES,
    CASE_READERS,
    CONTACT_READERS,
    BoardRowOut,
    ContactOut,
    read_board,
    read_case,
    read_contact,
)
from adapters.http.console.auth import ConsoleStaff, form_checked, posted, signed_in
from adapters.http.console.moves import MOVES_BY_SLUG, MoveForm, offered
from adapters.http.console.pages import PREFIX, domain_error_page, invalid_messages, page, with_query
from adapters.http.errors import domain_status
from adapters.http.queries import DIRECTORY_READERS
from adapters.http.services import Services, services
from domain.errors import NotFoundError, PingjingError
from domain.ids import check_case_ref
from domain.values import Role

#: Board rows shown at most (the filters narrow the rest down).
BOARD_ROWS = 500
#: Every case the board may sort (the API's own upper limit).
_BOARD_LIMIT = 10_000
_NEVER = datetime.max.replace(tzinfo=UTC)
UNCHANGED = "输入有误，未做任何更改。 Invalid input; nothing was changed."
#: The ``state`` filter that shows cases in every state.
ALL_STATES = "all"
#: The board's state filters: open cases (the default: every state but closed), each state, all.
BOARD_FILTERS = ("open", *(state for state in BOARD_STATES if state != "open"), ALL_STATES)


@dataclass(frozen=True)
class Waiting:
    """A step a case waits on: its deadline, and whether it has passed."""

    step: str
    deadline: datetime
    overdue: bool


@dataclass(frozen=True)
class BoardLine:
    """One row of the board."""

    row: BoardRowOut
    unit_name: str
    officer_name: str
    waiting: list[Waiting]


@dataclass(frozen=True)
class SlaLine:
    """One run of a step's clock on the case page."""

    step: str
    round: int
    started_at: datetime
    deadline: datetime
    ended_at: datetime | None
    status: str
    overdue: bool


def board_order(row: BoardRowOut) -> tuple[bool, datetime, datetime]:
    """Overdue and flagged open cases first, then by nearest deadline, then oldest first."""
    urgent = bool(row.overdue) or (row.flagged and row.closed_at is None)
    return not urgent, row.next_deadline or _NEVER, row.opened_at


class Names:
    """Units' and (for the roles that read the directory) officers' names."""

    def __init__(self, svc: Services, staff: ConsoleStaff) -> None:
        self.units = {u.code: u.name for u in svc.roster.units()}
        self.officers = {o.badge: o.name for o in svc.roster.officers()} if staff.role in DIRECTORY_READERS else {}

    def unit(self, code: str) -> str:
        """``城关派出所 (PS1)``."""
        return f"{self.units[code]} ({code})" if code in self.units else code

    def officer(self, badge: str) -> str:
        """``李警官 (100102)``, or the badge alone."""
        if not badge:
            return "—"
        return f"{self.officers[badge]} ({badge})" if badge in self.officers else badge


def board_page(
    request: Request,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
    state: str | None = None,
    unit: str | None = None,
    overdue: str | None = None,
) -> HTMLResponse:
    """案件看板: cases by urgency, with the steps they wait on and their deadlines."""
    allow(CASE_READERS, "read the case board")(staff)
    chosen_state = "open" if state is None else state.strip()
    code = (unit or "").strip().upper() or None
    only_overdue = (overdue or "") in {"1", "on", "yes", "true"}
    found = read_board(
        staff, svc, state=None if chosen_state in {"", ALL_STATES} else chosen_state, unit=code,
        overdue=only_overdue, limit=_BOARD_LIMIT,
    )
    now = svc.app.clock.now()
    names = Names(svc, staff)
    rows = sorted(found, key=board_order)
    lines = [
        BoardLine(row, names.unit(row.unit_code), names.officer(row.officer_badge), [
            Waiting(step, row.deadlines[step], step in row.overdue) for step in row.waiting if step in row.deadlines
        ])
        for row in rows[:BOARD_ROWS]
    ]
    own = staff.unit_code if staff.role is Role.UNIT_HEAD else None
    units = [(code, names.unit(code)) for code in sorted(names.units) if own is None or code == own]
    return page(
        request, "board.html.j2", lines=lines, total=len(rows), shown=BOARD_ROWS, now=now,
        states=BOARD_FILTERS, state=chosen_state, unit=code or "", overdue=only_overdue, units=units,
    )


def _moment(value: Any) -> datetime | None:
    """A moment from a JSON-shaped answer (ISO text) or as it is."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def render_case(
    request: Request,
    svc: Services,
    staff: ConsoleStaff,
    ref: str,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
    error_details: list[str] | None = None,
    failed: str | None = None,
    submitted: dict[str, str] | None = None,
    contact: ContactOut | None = None,
) -> HTMLResponse:
    """A case's page: header, SLA steps, the whole timeline, the audit score, the moves offered."""
    allow(CASE_READERS, "read case histories")(staff)
    story = read_case(ref, staff, svc)
    row = story.case
    now = svc.app.clock.now()
    names = Names(svc, staff)
    sla = []
    for step in sorted(story.sla, key=lambda s: (s["round"], s["started_at"], s["deadline"])):
        deadline = _moment(step["deadline"]) or now
        ended = _moment(step["ended_at"])
        sla.append(SlaLine(step["step"], int(step["round"]), _moment(step["started_at"]) or now, deadline, ended,
                           step["status"], ended is None and step["status"] == "running" and deadline < now))
    # What a form's required text fields start with: the case's officer (the one accountable, most often).
    known = {"badge": row.officer_badge}
    moves = offered(svc.app, staff.actor, row.ref, known)
    has_contact = svc.app.get_case(row.ref).contact is not None
    return page(
        request, "case.html.j2", status_code, row=row, unit_name=names.unit(row.unit_code),
        officer_name=names.officer(row.officer_badge), sla=sla, timeline=story.timeline, audit=story.audit, now=now,
        moves=moves, failed=failed, submitted=submitted or {}, known=known, contact=contact, has_contact=has_contact,
        may_reveal=has_contact and staff.role in CONTACT_READERS, redacted=staff.role is Role.AUDITOR,
        notice=notice, error=error, error_details=error_details or [],
    )


def case_page(
    request: Request,
    ref: str,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
    done: str | None = None,
) -> HTMLResponse:
    """案件详情: the case's page; ``done`` names the move just made."""
    move = MOVES_BY_SLUG.get(done or "")
    notice = f"已办理：{move.button}。 Done: {move.english}." if move else None
    return render_case(request, svc, staff, ref, notice=notice)


def make_move(
    request: Request,
    ref: str,
    move: str,
    staff: Annotated[ConsoleStaff, Depends(form_checked)],
    svc: Annotated[Services, Depends(services)],
    form: Annotated[dict[str, str], Depends(posted)],
) -> Response:
    """Run a move posted from the case page; back to the page (303), or the page with the refusal."""
    ref = check_case_ref(ref)
    spec = MOVES_BY_SLUG.get(move)
    if spec is None:
        raise NotFoundError("case move", move)
    try:
        command = spec.command_from(ref, form)
        svc.app.execute(command, staff.context(request))
    except PydanticValidationError as invalid:
        return _refused(request, svc, staff, ref, spec, form, 422, UNCHANGED, invalid_messages(list(invalid.errors())))
    except PingjingError as refused:
        return _refused(request, svc, staff, ref, spec, form, domain_status(refused)[0],
                        f"未办理：{refused} (nothing was changed)", [], refused)
    return RedirectResponse(with_query(f"{PREFIX}/cases/{ref}", done=spec.slug), status_code=303)


def _refused(
    request: Request,
    svc: Services,
    staff: ConsoleStaff,
    ref: str,
    spec: MoveForm,
    form: dict[str, str],
    status_code: int,
    message: str,
    details: list[str],
    cause: PingjingError | None = None,
) -> HTMLResponse:
    """The case page again with the refusal; the refusal's own page when the case cannot be shown."""
    submitted = {field.name: form.get(field.name, "") for field in spec.fields}
    try:
        return render_case(request, svc, staff, ref, status_code=status_code, error=message, error_details=details,
                           failed=spec.slug, submitted=submitted)
    except PingjingError as unreadable:
        return domain_error_page(request, cause or unreadable)


def reveal_contact(
    request: Request,
    ref: str,
    staff: Annotated[ConsoleStaff, Depends(form_checked)],
    svc: Annotated[Services, Depends(services)],
) -> HTMLResponse:
    """查看联系方式: the citizen's phone and name, once the read is recorded (as the API records it)."""
    allow(CONTACT_READERS, "read a citizen's contact")(staff)
    answer = read_contact(request, ref, staff, svc)
    contact = ContactOut.model_validate_json(bytes(answer.body))
    notice = "本次查看已记录在案。 This read of personal data is on record."
    return render_case(request, svc, staff, contact.case_ref, notice=notice, contact=contact)


def register(router: APIRouter) -> None:
    """Add the board's and the cases' routes."""
    router.add_api_route("/board", board_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/cases/{ref}", case_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/cases/{ref}/personal-data", reveal_contact, methods=["POST"], response_class=HTMLResponse)
    router.add_api_route("/cases/{ref}/{move}", make_move, methods=["POST"], response_class=HTMLResponse)
