"""The weekly review (周点评) and monthly bulletin (月通报) as data, read from the views.

:func:`build_report` gathers, for one period: per unit the five rates and the on-time
rates with the change from the previous period, a ranking, the trend over recent
periods, and the period's flagged cases, breaches, accountability records and
commendations. The result is plain, ordered data with nothing in it but what the events
up to the views' position say, so that it hashes the same whenever it is recomputed
from the same events (:func:`content_hash`). Renderings (HTML, Markdown) are made from
it in ``adapters/reports``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from domain.errors import ValidationError
from domain.rates import FIVE_RATES, ON_TIME, Period, parse_period, previous_period, recent_periods
from domain.reports import ReportKind
from projections import ledger, timeline
from projections.board import TABLE as BOARD
from projections.board import from_ts, ts
from projections.rates import rates
from projections.registry import COUNTY, Registry
from projections.store import ViewStore

#: How many periods the trend charts show (this one included).
TREND_PERIODS = {ReportKind.WEEKLY: 8, ReportKind.MONTHLY: 6}
#: The rates whose mean ranks the units (each available one counts equally; n/a ones are left out).
RANKED_RATES = tuple(FIVE_RATES)
#: The counts shown beside the rates.
SHOWN_COUNTS = ("encounters", "ratings", "cases_opened", "flagged", "breaches", "accountability", "commendations")

TITLES = {
    ReportKind.WEEKLY: ("扫码评警周点评", "Weekly review"),
    ReportKind.MONTHLY: ("扫码评警月通报", "Monthly bulletin"),
}


def period_kind(kind: ReportKind) -> str:
    """The period a report kind covers: ``week`` or ``month``."""
    return "week" if kind is ReportKind.WEEKLY else "month"


def check_period(kind: ReportKind, key: str) -> Period:
    """The period, refused when it does not fit the report kind."""
    period = parse_period(key)
    if period.kind != period_kind(kind):
        expected = "an ISO week like 2021-W47" if kind is ReportKind.WEEKLY else "a month like 2021-11"
        raise ValidationError(f"a {kind.value} report covers {expected}, not {key}")
    return period


def title_of(kind: ReportKind, period: str, registry: Registry) -> str:
    """``灵寿县公安局扫码评警周点评 2021-W47``."""
    root = _root_name(registry)
    return f"{root}{TITLES[kind][0]} {period}"


def content_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the report's canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_report(
    views: ViewStore, registry: Registry, kind: ReportKind, period_key: str, position: int
) -> dict[str, Any]:
    """The report's content for ``period_key`` from views that stand at ``position``."""
    period = check_period(kind, period_key)
    previous = previous_period(period)
    trend = recent_periods(period, TREND_PERIODS[kind])
    units = sorted(registry.units.values(), key=lambda u: u.code)
    county = _scope_figures(views, COUNTY, period, previous)
    unit_rows = []
    for info in units:
        figures = _scope_figures(views, f"unit:{info.code}", period, previous)
        parent = registry.units.get(info.parent_id) if info.parent_id else None
        unit_rows.append({"code": info.code, "name": info.name, "parent": parent.code if parent else None, **figures})
    ranking = _rank(unit_rows)
    return {
        "kind": kind.value,
        "period": period.key,
        "period_start": period.start.date().isoformat(),
        "period_end": (period.end.date()).isoformat(),
        "previous_period": previous.key,
        "title": title_of(kind, period.key, registry),
        "county_name": _root_name(registry),
        "position": position,
        "county": county,
        "units": unit_rows,
        "ranking": ranking,
        "trend": _trend(views, trend, units),
        "flagged": _timeline_facts(views, period, "Flagged"),
        "breaches": _breaches(views, period),
        "accountability": _timeline_facts(views, period, "AccountabilityRecorded"),
        "commendations": _timeline_facts(views, period, "CommendationRecorded"),
        "ranking_rule": "mean of the available five rates (n/a left out); ties by fewer breaches, then unit code",
    }


def _root_name(registry: Registry) -> str:
    roots = sorted((u for u in registry.units.values() if u.parent_id is None), key=lambda u: u.code)
    return roots[0].name if roots else "县公安局"


def _rate(r: Any) -> dict[str, Any]:
    return {"numerator": r.numerator, "denominator": r.denominator, "value": r.value}


def _scope_figures(views: ViewStore, scope: str, period: Period, previous: Period) -> dict[str, Any]:
    now, before = rates(views, scope, period), rates(views, scope, previous)
    out: dict[str, Any] = {}
    for name in (*FIVE_RATES, *ON_TIME):
        current, prior = now.rates[name], before.rates[name]
        change = None if current.value is None or prior.value is None else current.value - prior.value
        out[name] = {**_rate(current), "previous": prior.value, "change": change}
    return {"rates": out, "counts": {name: now.counts.get(name, 0) for name in SHOWN_COUNTS}}


def _score(row: dict[str, Any]) -> float | None:
    values = [row["rates"][name]["value"] for name in RANKED_RATES if row["rates"][name]["value"] is not None]
    return sum(values) / len(values) if values else None


def _rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ranking (units without any rate last, unranked); each row gets its rank too."""
    scored = [(row, _score(row)) for row in rows]
    ranked = sorted(
        ((row, score) for row, score in scored if score is not None),
        key=lambda item: (-item[1], item[0]["counts"]["breaches"], item[0]["code"]),
    )
    unranked = [(row, score) for row, score in scored if score is None]
    ranking = []
    for i, (row, score) in enumerate([*ranked, *unranked], 1):
        row["rank"] = i if score is not None else None
        ranking.append({"rank": row["rank"], "code": row["code"], "name": row["name"], "score": score})
    return ranking


def _trend(views: ViewStore, periods: list[Period], units: list[Any]) -> dict[str, Any]:
    county: dict[str, list[float | None]] = {name: [] for name in FIVE_RATES}
    per_unit: dict[str, list[float | None]] = {}
    for period in periods:
        figures = rates(views, COUNTY, period)
        for name in FIVE_RATES:
            county[name].append(figures.rates[name].value)
    for info in units:
        per_unit[info.code] = [rates(views, f"unit:{info.code}", p).rates["satisfaction"].value for p in periods]
    return {"periods": [p.key for p in periods], "county": county, "unit_satisfaction": per_unit}


def _local_bounds(period: Period) -> tuple[str, str]:
    # Timeline rows hold local (Asia/Shanghai) minutes, which sort as text.
    return timeline.local(period.start), timeline.local(period.end)


def _timeline_facts(views: ViewStore, period: Period, event: str) -> list[dict[str, Any]]:
    start, end = _local_bounds(period)
    rows = views.query(
        f"SELECT t.case_ref, b.unit_code, t.at, t.details, t.actor FROM {timeline.TABLE} t "
        f"JOIN {BOARD} b ON b.case_ref = t.case_ref "
        "WHERE t.event = ? AND t.at >= ? AND t.at < ? ORDER BY t.at, t.case_ref, t.seq",
        (event, start, end),
    )
    return [{"case_ref": r[0], "unit": r[1], "at": r[2], "details": r[3], "by": r[4]} for r in rows]


def _breaches(views: ViewStore, period: Period) -> list[dict[str, Any]]:
    rows = views.query(
        f"SELECT case_ref, unit_code, step, round, deadline, breached_at, status FROM {ledger.TABLE} "
        "WHERE breached_at >= ? AND breached_at < ? ORDER BY breached_at, case_ref, step, round",
        (ts(period.start), ts(period.end)),
    )
    return [
        {
            "case_ref": r[0],
            "unit": r[1],
            "step": r[2],
            "round": int(r[3]),
            "deadline": timeline.local(from_ts(r[4])),
            "breached_at": timeline.local(from_ts(r[5])),
            "status": r[6],
        }
        for r in rows
    ]
