"""The dashboard: the five rates (DESIGN §6) per unit, this week and this month, with a chart each.

The figures come from the staff API's rates query (:func:`adapters.http.queries.read_rates`),
scope by scope, with its rules: the office, auditors and unit heads read the county and every
unit; an officer reads only their own aggregated rates of a period already over that rest on at
least ``k`` ratings, and otherwise sees the API's reason instead. ``?week=2021-W47&month=2021-11``
shows other periods; an officer starts at the last complete week and month (the current ones are
never shown to them). The charts are the reports' own (:func:`adapters.reports.render.unit_chart`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from adapters.http.auth import allow
from adapters.http.console.auth import ConsoleStaff, signed_in
from adapters.http.console.pages import page
from adapters.http.queries import RATES_READERS, read_rates
from adapters.http.services import Services, services
from adapters.reports.render import unit_chart
from domain.errors import PermissionDeniedError, ValidationError
from domain.rates import FIVE_RATES, Period, parse_period, period_before, period_keys, previous_period
from domain.values import Role

KINDS = {"week": ("周", "week"), "month": ("月", "month")}


@dataclass(frozen=True)
class ScopeRates:
    """One scope's five rates in a period (each ``{numerator, denominator, value}``) and its ratings."""

    scope: str
    name: str
    rates: dict[str, dict[str, Any]]
    ratings: int


@dataclass
class PeriodView:
    """One period on the dashboard: its rows, its chart, the links to the periods around it."""

    period: Period
    title: str
    rows: list[ScopeRates] = field(default_factory=list)
    chart: Markup | None = None
    refused: str | None = None
    previous: str = ""
    following: str | None = None


def requested_period(text: str | None, kind: str, default: Period) -> Period:
    """The period a query parameter names (``2021-W47`` for a week, ``2021-11`` for a month), or ``default``."""
    if not text:
        return default
    period = parse_period(text)
    if period.kind != kind:
        expected = "an ISO week like 2021-W47" if kind == "week" else "a month like 2021-11"
        raise ValidationError(f"{kind}={text!r}: expected {expected}")
    return period


def _key(moment: datetime, kind: str) -> str:
    week, month = period_keys(moment)
    return week if kind == "week" else month


def _view(svc: Services, staff: ConsoleStaff, period: Period, now: datetime) -> PeriodView:
    current = _key(now, period.kind)
    zh, en = KINDS[period.kind]
    title = f"本{zh} This {en} · {period.key}" if period.key == current else f"{period.key}"
    following = parse_period(_key(period.end, period.kind))
    view = PeriodView(period, title, previous=previous_period(period).key,
                      following=following.key if following.start <= now else None)
    if staff.role is Role.OFFICER:
        scopes = [(f"officer:{staff.actor.principal}", f"本人 Own rates ({staff.actor.principal})")]
    else:
        scopes = [("county", "全县 County")] + [(f"unit:{u.code}", f"{u.name} ({u.code})") for u in svc.roster.units()]
    try:
        for scope, name in scopes:
            data: dict[str, Any] = read_rates(staff, svc, period.key, scope)
            rates = {rate: data["rates"][rate] for rate in FIVE_RATES}
            view.rows.append(ScopeRates(scope, name, rates, int(data["counts"].get("ratings", 0))))
    except PermissionDeniedError as refused:
        view.rows, view.refused = [], str(refused)
        return view
    charted = [row for row in view.rows if row.scope != "county"]
    if charted:
        chart = unit_chart({"units": [{"name": row.name, "rates": row.rates} for row in charted]})
        view.chart = Markup(chart)  # noqa: S704 - pygal's own SVG; the names in it are escaped by its XML writer
    return view


def dashboard(
    request: Request,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
    week: str | None = None,
    month: str | None = None,
) -> HTMLResponse:
    """五率: the five rates per unit for a week and a month, with their numerators and denominators."""
    try:
        allow(RATES_READERS, "read rates")(staff)
    except PermissionDeniedError as refused:
        return page(request, "dashboard.html.j2", views=[], refused=str(refused), week="", month="")
    now = svc.app.clock.now()
    if staff.role is Role.OFFICER:
        default_week, default_month = period_before(now, "week"), period_before(now, "month")
    else:
        default_week, default_month = (parse_period(key) for key in period_keys(now))
    chosen_week = requested_period(week, "week", default_week)
    chosen_month = requested_period(month, "month", default_month)
    views = [_view(svc, staff, chosen_week, now), _view(svc, staff, chosen_month, now)]
    return page(request, "dashboard.html.j2", views=views, refused=None, week=chosen_week.key,
                month=chosen_month.key, officer=staff.role is Role.OFFICER,
                k=svc.rt.settings.officer_min_ratings)


def register(router: APIRouter) -> None:
    """Add the dashboard."""
    router.add_api_route("/", dashboard, methods=["GET"], response_class=HTMLResponse)
