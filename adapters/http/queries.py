"""Reading the directory, the rates and the reports; and who the token says you are.

- units: every member of staff; officers (names, units): administrators, the office, unit heads
- rates: the office and auditors any scope; a unit head the county, any unit, and their own
  unit's officers; an officer only their own aggregated rates, for a period already over, from
  ``k`` ratings on (``PINGJING_OFFICER_MIN_RATINGS``), never as of a past moment (two moments a
  rating apart would tell that rating)
- reports: the office, auditors (redacted) and unit heads
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from eventsourcing.utils import get_topic
from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel

from adapters.http.auth import Staff, allow, documented
from adapters.http.errors import ERROR_RESPONSES
from adapters.http.privacy import redact
from adapters.http.services import Services, services
from domain.errors import NotFoundError, PermissionDeniedError
from domain.ids import LOCAL_TZ, officer_id, unit_id
from domain.rates import Period, parse_period
from domain.registry import Officer, Unit
from domain.reports import Report
from domain.tokens import TOKEN_ROLES
from domain.values import Role
from projections.analyst import rebuild_in_memory
from projections.rates import RatesReport, parse_scope, rates
from projections.reports import content_hash

ALL_STAFF = TOKEN_ROLES
DIRECTORY_READERS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.UNIT_HEAD})
RATES_READERS = frozenset({Role.SUPERVISOR, Role.AUDITOR, Role.UNIT_HEAD, Role.OFFICER})
REPORT_READERS = frozenset({Role.SUPERVISOR, Role.AUDITOR, Role.UNIT_HEAD})
_PAGE = 1000


class MeOut(BaseModel):
    """The token's holder."""

    token_id: str
    role: str
    principal: str
    unit_code: str | None


class UnitOut(BaseModel):
    """A unit of the bureau."""

    code: str
    name: str
    kind: str
    parent_code: str | None
    head_badge: str | None


class OfficerOut(BaseModel):
    """A police or auxiliary officer."""

    badge: str
    name: str
    kind: str
    unit_code: str
    left: bool


class PublicationOut(BaseModel):
    """One publication of a weekly review or monthly bulletin."""

    name: str
    kind: str
    period: str
    edition: int
    title: str
    position: int
    content_hash: str
    published_at: datetime
    published_by: str


class ReportOut(BaseModel):
    """A publication and the JSON file it wrote (None when the file is not on this machine)."""

    publication: PublicationOut
    document: dict[str, Any] | None
    file_matches: bool | None


def me(staff: Annotated[Staff, Depends(allow(ALL_STAFF, "ask who they are"))]) -> MeOut:
    """Who the bearer token stands for."""
    return MeOut(token_id=str(staff.token_id), role=staff.role.value, principal=staff.actor.principal,
                 unit_code=staff.unit_code)


def _unit_out(unit: Unit, codes: dict[Any, str]) -> UnitOut:
    parent = codes.get(unit.parent_id) if unit.parent_id else None
    return UnitOut(code=unit.code, name=unit.name, kind=unit.kind.value, parent_code=parent, head_badge=unit.head_badge)


def list_units(
    staff: Annotated[Staff, Depends(allow(ALL_STAFF, "list the units"))], svc: Annotated[Services, Depends(services)]
) -> list[UnitOut]:
    """Every unit, by code."""
    units = svc.roster.units()
    codes = {u.id: u.code for u in units}
    return [_unit_out(u, codes) for u in units]


def read_unit(
    code: str,
    staff: Annotated[Staff, Depends(allow(ALL_STAFF, "read a unit"))],
    svc: Annotated[Services, Depends(services)],
) -> UnitOut:
    """One unit."""
    units = svc.roster.units()
    found = next((u for u in units if u.code == code.strip().upper()), None)
    if found is None:
        raise NotFoundError("unit", code)
    return _unit_out(found, {u.id: u.code for u in units})


def list_officers(
    staff: Annotated[Staff, Depends(allow(DIRECTORY_READERS, "list the officers"))],
    svc: Annotated[Services, Depends(services)],
    unit: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{1,31}$")] = None,
) -> list[OfficerOut]:
    """Every officer (or one unit's), by badge."""
    codes = {u.id: u.code for u in svc.roster.units()}
    wanted = unit.upper() if unit else None
    if wanted is not None and wanted not in codes.values():
        raise NotFoundError("unit", wanted)
    officers = [o for o in svc.roster.officers() if wanted is None or codes.get(o.unit_id) == wanted]
    return [_officer_out(o, codes) for o in officers]


def read_officer(
    badge: str,
    staff: Annotated[Staff, Depends(allow(DIRECTORY_READERS, "read an officer"))],
    svc: Annotated[Services, Depends(services)],
) -> OfficerOut:
    """One officer."""
    codes = {u.id: u.code for u in svc.roster.units()}  # caught up with the log
    found = svc.roster.get(officer_id(badge.strip().upper()))
    if not isinstance(found, Officer):
        raise NotFoundError("officer", badge)
    return _officer_out(found, codes)


def _officer_out(officer: Officer, codes: dict[Any, str]) -> OfficerOut:
    return OfficerOut(badge=officer.badge, name=officer.name, kind=officer.kind.value,
                      unit_code=codes.get(officer.unit_id, ""), left=officer.left)


def read_rates(
    staff: Annotated[Staff, Depends(allow(RATES_READERS, "read rates"))],
    svc: Annotated[Services, Depends(services)],
    period: Annotated[str, Query(description="an ISO week (2021-W47) or a month (2021-11), Asia/Shanghai")],
    scope: Annotated[str, Query(description="county, unit:CODE or officer:BADGE")] = "county",
    as_of: Annotated[AwareDatetime | None, Query(description="as the rates stood at this moment")] = None,
) -> dict[str, Any]:
    """The five rates and the on-time rate of every step, with numerators and denominators."""
    scope = parse_scope(scope)
    wanted = parse_period(period)
    kind, _, key = scope.partition(":")
    if kind == "unit" and svc.app.get_aggregate(unit_id(key)) is None:
        raise NotFoundError("unit", key)
    if kind == "officer" and svc.app.get_aggregate(officer_id(key)) is None:
        raise NotFoundError("officer", key)
    if staff.role is Role.OFFICER:
        _officer_may_ask(svc, staff, scope, wanted, as_of)
    if staff.role is Role.UNIT_HEAD and kind == "officer" and (
        svc.app.get_officer(key).unit_id != unit_id(staff.unit_code or "")
    ):
        raise PermissionDeniedError(f"{staff.actor} reads the rates of their own unit's officers only, "
                                    f"and officer {key} is not in unit {staff.unit_code}")
    report = _rates(svc, scope, wanted, as_of)
    if staff.role is Role.OFFICER and report.counts.get("ratings", 0) < svc.rt.settings.officer_min_ratings:
        raise PermissionDeniedError(f"{staff.actor}: the rates of {wanted.key} rest on fewer than "
                                    f"{svc.rt.settings.officer_min_ratings} ratings and are not shown to officers")
    return report.as_dict()


def _officer_may_ask(svc: Services, staff: Staff, scope: str, period: Period, as_of: datetime | None) -> None:
    """An officer reads only their own rates, of a period already over, as they stand now."""
    own = f"officer:{staff.actor.principal}"
    if scope != own:
        raise PermissionDeniedError(f"{staff.actor} may read only their own rates (scope {own})")
    if as_of is not None:
        raise PermissionDeniedError(f"{staff.actor}: officers read their rates as they stand, not as of a moment")
    if period.end > svc.app.clock.now():
        ends = period.end.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
        raise PermissionDeniedError(f"{staff.actor}: {period.key} is not over yet (it ends {ends}); "
                                    "officers see the rates of closed periods only")


def _rates(svc: Services, scope: str, period: Period, as_of: datetime | None) -> RatesReport:
    if as_of is None:
        return rates(svc.current_views(), scope, period)
    views = rebuild_in_memory(svc.app, as_of=as_of, policy=svc.rt.policy)
    try:
        return rates(views, scope, period)
    finally:
        views.close()


def _publication(report: Any) -> PublicationOut:
    """From a Report aggregate or its Published event (the same fields)."""
    return PublicationOut(
        name=report.name, kind=str(report.kind), period=report.period, edition=report.edition, title=report.title,
        position=report.position, content_hash=report.content_hash, published_at=report.published_at,
        published_by=report.published_by,
    )


def list_reports(
    staff: Annotated[Staff, Depends(allow(REPORT_READERS, "list the reports"))],
    svc: Annotated[Services, Depends(services)],
) -> list[PublicationOut]:
    """Every publication, in the order they were published."""
    topics = [get_topic(Report.Published)]  # type: ignore[attr-defined]
    found: list[PublicationOut] = []
    start = 1
    while True:
        page = svc.app.recorder.select_notifications(start=start, limit=_PAGE, topics=topics)
        for notification in page:
            event: Any = svc.app.mapper.to_domain_event(notification)
            found.append(_publication(event.mutate(None)))
        if len(page) < _PAGE:
            break
        start = page[-1].id + 1
    return [PublicationOut.model_validate(redact(p.model_dump(mode="json"))) for p in found] if (
        staff.role is Role.AUDITOR
    ) else found


def read_report(
    name: str,
    staff: Annotated[Staff, Depends(allow(REPORT_READERS, "read a report"))],
    svc: Annotated[Services, Depends(services)],
) -> ReportOut:
    """A publication (without an edition: the latest) with the content of its JSON file."""
    report = svc.app.get_report(name)
    path = svc.rt.settings.reports_dir / f"{report.name}.json"
    document: dict[str, Any] | None = None
    matches: bool | None = None
    if path.is_file():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            matches = content_hash(document["report"]) == report.content_hash if document else False
        except (ValueError, KeyError, TypeError):
            document, matches = None, False
    out = ReportOut(publication=_publication(report), document=document, file_matches=matches)
    return ReportOut.model_validate(redact(out.model_dump(mode="json"))) if staff.role is Role.AUDITOR else out


def router() -> APIRouter:
    """The reading routes under ``/api/v1`` (the cases' are in :mod:`adapters.http.cases`)."""
    api = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
    api.add_api_route("/me", me, response_model=MeOut, tags=["directory"], **documented(me, ALL_STAFF))
    api.add_api_route("/units", list_units, response_model=list[UnitOut], tags=["directory"],
                      **documented(list_units, ALL_STAFF))
    api.add_api_route("/units/{code}", read_unit, response_model=UnitOut, tags=["directory"],
                      **documented(read_unit, ALL_STAFF))
    api.add_api_route("/officers", list_officers, response_model=list[OfficerOut], tags=["directory"],
                      **documented(list_officers, DIRECTORY_READERS))
    api.add_api_route("/officers/{badge}", read_officer, response_model=OfficerOut, tags=["directory"],
                      **documented(read_officer, DIRECTORY_READERS))
    api.add_api_route("/rates", read_rates, tags=["rates"], **documented(read_rates, RATES_READERS))
    api.add_api_route("/reports", list_reports, response_model=list[PublicationOut], tags=["reports"],
                      **documented(list_reports, REPORT_READERS))
    api.add_api_route("/reports/{name}", read_report, response_model=ReportOut, tags=["reports"],
                      **documented(read_report, REPORT_READERS))
    return api
