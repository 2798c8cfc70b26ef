"""QR codes: every unit and officer with the state of their code, the images, the printable sheets.

Administrators manage the codes (issue, rotate, revoke: the registry's commands, which only they
may run); the supervision office reads the page and downloads codes and sheets. The images,
the sheet and the scan URLs are made as ``pingjing qr`` makes them (:mod:`adapters.qr`): each code
points at ``{PINGJING_PUBLIC_URL}/s/{token}``, signed with the active key of the settings' keyring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError as PydanticValidationError

from adapters.http.api import staff_roles
from adapters.http.auth import allow
from adapters.http.console.auth import ConsoleStaff, form_checked, posted, signed_in
from adapters.http.console.pages import PREFIX, QR_READERS, invalid_messages, page, with_query
from adapters.http.errors import domain_status
from adapters.http.services import Services, services
from adapters.qr import (
    code_urls,
    issued_target,
    png_bytes,
    render_sheet,
    svg_bytes,
    unit_sheet,
)
from domain import commands as c
from domain.errors import NotFoundError, PingjingError
from domain.ids import qr_identity_id
from domain.registry import QrIdentity
from domain.values import QrSubject

#: The forms of the page, each a registry command on one identity; their buttons.
ACTIONS: dict[str, tuple[type[c.IssueQr], str, str]] = {
    "issue": (c.IssueQr, "签发二维码", "Issue"),
    "rotate": (c.RotateQr, "更换二维码", "Rotate"),
    "revoke": (c.RevokeQr, "停用二维码", "Revoke"),
}
QR_MANAGERS = frozenset.intersection(*(staff_roles(command) for command, _, _ in ACTIONS.values()))
UNCHANGED = "输入有误，未做任何更改。 Invalid input; nothing was changed."
IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class QrLine:
    """A unit or officer and their QR identity (version None: never issued)."""

    subject: str
    key: str
    name: str
    unit_code: str
    left: bool
    version: int | None
    active: bool

    @property
    def state(self) -> str:
        """``有效 active``, ``已停用 revoked``, ``未签发 never issued`` or ``已离职 left``."""
        if self.left:
            return "已离职 left"
        if self.version is None:
            return "未签发 never issued"
        return "有效 active" if self.active else "已停用 revoked"


def qr_lines(svc: Services) -> tuple[list[QrLine], list[QrLine]]:
    """Every unit and every officer with their QR identity, from the directory."""
    units = svc.roster.units()  # caught up with the log
    codes = {u.id: u.code for u in units}
    roster = svc.roster

    def line(subject: QrSubject, key: str, name: str, unit_code: str, left: bool) -> QrLine:
        identity = roster.get(qr_identity_id(subject, key))
        if isinstance(identity, QrIdentity):
            return QrLine(subject.value, key, name, unit_code, left, identity.qr_version, identity.active)
        return QrLine(subject.value, key, name, unit_code, left, None, False)

    unit_lines = [line(QrSubject.UNIT, u.code, u.name, u.code, False) for u in units]
    officer_lines = [
        line(QrSubject.OFFICER, o.badge, o.name, codes.get(o.unit_id, ""), o.left) for o in roster.officers()
    ]
    return unit_lines, officer_lines


def _page(
    request: Request,
    staff: ConsoleStaff,
    svc: Services,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
    error_details: list[str] | None = None,
) -> HTMLResponse:
    allow(QR_READERS, "read the QR codes")(staff)
    units, officers = qr_lines(svc)
    return page(request, "qr.html.j2", status_code, units=units, officers=officers, actions=ACTIONS,
                may_manage=staff.role in QR_MANAGERS, notice=notice, error=error, error_details=error_details or [])


def qr_page(
    request: Request,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
    done: str | None = None,
    key: str | None = None,
) -> HTMLResponse:
    """二维码: the units' and officers' codes; ``done`` and ``key`` name what was just changed."""
    action = ACTIONS.get(done or "")
    notice = f"已完成「{action[1]}」：{key}。 Done: {action[2]} {key}." if action and key else None
    return _page(request, staff, svc, notice=notice)


def _subject(text: str) -> QrSubject:
    try:
        return QrSubject(text)
    except ValueError:
        raise NotFoundError("QR subject", text) from None


def qr_image(
    subject: str,
    key: str,
    fmt: str,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
) -> Response:
    """The current code of a unit or officer as PNG or SVG, to download (as ``pingjing qr`` writes it)."""
    allow(QR_READERS, "download QR codes")(staff)
    if fmt not in IMAGE_TYPES:
        raise NotFoundError("image format", fmt)
    target = issued_target(svc.app, _subject(subject), key)
    url = code_urls(svc.rt.settings)(target)
    data = png_bytes(url) if fmt == "png" else svg_bytes(url)
    filename = f"{target.subject.value}-{target.key}-v{target.version}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(data, media_type=IMAGE_TYPES[fmt], headers=disposition)


def qr_sheet(
    unit: str,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
) -> HTMLResponse:
    """A unit's printable A4 sheet: its code and its active officers' (as ``pingjing qr sheet`` writes it)."""
    allow(QR_READERS, "print QR sheets")(staff)
    sheet = unit_sheet(svc.app, unit)
    return HTMLResponse(render_sheet(sheet, code_urls(svc.rt.settings), svc.app.clock.now()))


def qr_action(
    request: Request,
    subject: str,
    key: str,
    action: str,
    staff: Annotated[ConsoleStaff, Depends(form_checked)],
    svc: Annotated[Services, Depends(services)],
    form: Annotated[dict[str, str], Depends(posted)],
) -> Response:
    """Issue, rotate or revoke a code (administrators); back to the page (303), or the page with the refusal."""
    found = ACTIONS.get(action)
    if found is None:
        raise NotFoundError("QR action", action)
    command_type = found[0]
    data = {"subject": subject, "key": key}
    if "reason" in command_type.model_fields:
        data["reason"] = form.get("reason", "")
    try:
        command = command_type.model_validate(data)
        svc.app.execute(command, staff.context(request))
    except PydanticValidationError as invalid:
        return _page(request, staff, svc, status_code=422, error=UNCHANGED,
                     error_details=invalid_messages(list(invalid.errors())))
    except PingjingError as refused:
        return _page(request, staff, svc, status_code=domain_status(refused)[0],
                     error=f"未办理：{refused} (nothing was changed)")
    return RedirectResponse(with_query(f"{PREFIX}/qr", done=action, key=command.key), status_code=303)


def register(router: APIRouter) -> None:
    """Add the QR routes."""
    router.add_api_route("/qr", qr_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/qr/sheet/{unit}", qr_sheet, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/qr/{subject}/{key}.{fmt}", qr_image, methods=["GET"])
    router.add_api_route("/qr/{subject}/{key}/{action}", qr_action, methods=["POST"], response_class=HTMLResponse)
