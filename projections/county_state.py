"""The county at a glance, folded in memory from the event log.

A small read model computed on demand: per unit its officers, encounters, ratings
by verdict and cases by state; and every case's summary row. It reads events only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.case import Case
from domain.encounters import Encounter
from domain.ratings import Rating
from domain.registry import Officer, Unit
from domain.values import Verdict
from domain.workflow import CaseState


@dataclass
class UnitRow:
    """One unit's figures."""

    code: str
    name: str
    kind: str
    parent: str | None
    head: str | None
    officers: int = 0
    encounters: int = 0
    ratings: Counter[str] = field(default_factory=Counter)
    cases: Counter[str] = field(default_factory=Counter)
    flagged_open: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data (counters as dicts) for JSON output."""
        data = {k: v for k, v in vars(self).items() if not isinstance(v, Counter)}
        return {**data, "ratings": dict(self.ratings), "cases": dict(self.cases)}


@dataclass(frozen=True)
class CaseRow:
    """One case's summary."""

    ref: str
    kind: str
    intake: str
    unit_code: str
    state: str
    round: int
    flagged: bool
    opened_at: datetime
    closed_at: datetime | None
    summary: str


@dataclass
class CountyState:
    """Units and cases as the log says they are now."""

    units: dict[str, UnitRow]
    cases: list[CaseRow]
    position: int
    events: int

    @property
    def ratings(self) -> Counter[str]:
        """Ratings by verdict, county-wide."""
        total: Counter[str] = Counter()
        for row in self.units.values():
            total.update(row.ratings)
        return total


def fold(events: Iterable[tuple[int, Any]]) -> CountyState:
    """Fold ``(position, event)`` pairs into a :class:`CountyState`."""
    aggregates: dict[UUID, Any] = {}
    encounters: Counter[UUID] = Counter()
    ratings: dict[UUID, Counter[str]] = {}
    position = count = 0
    for position, event in events:  # noqa: B007 - the last position is the answer
        count += 1
        fields = vars(event)
        if isinstance(event, Rating.Event):  # a rating has one event: Submitted
            ratings.setdefault(fields["unit_id"], Counter())[Verdict(fields["verdict"]).value] += 1
        elif isinstance(event, Encounter.Event):  # an encounter has one event: Logged
            encounters[fields["unit_id"]] += 1
        elif isinstance(event, Unit.Event | Officer.Event | Case.Event):
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
    units = {a.id: a for a in aggregates.values() if isinstance(a, Unit)}
    rows: dict[UUID, UnitRow] = {
        u.id: UnitRow(
            code=u.code,
            name=u.name,
            kind=u.kind.value,
            parent=units[u.parent_id].code if u.parent_id in units else None,
            head=u.head_badge,
            encounters=encounters[u.id],
            ratings=ratings.get(u.id, Counter()),
        )
        for u in units.values()
    }
    cases: list[CaseRow] = []
    for agg in aggregates.values():
        if isinstance(agg, Officer) and not agg.left and agg.unit_id in rows:
            rows[agg.unit_id].officers += 1
        elif isinstance(agg, Case):
            row = rows.get(agg.unit_id)
            if row is not None:
                row.cases[agg.state.value] += 1
                row.flagged_open += int(agg.flagged and agg.is_open)
            cases.append(
                CaseRow(
                    ref=agg.ref,
                    kind=agg.kind.value,
                    intake=agg.intake.value,
                    unit_code=row.code if row else str(agg.unit_id),
                    state=agg.state.value,
                    round=agg.round,
                    flagged=agg.flagged,
                    opened_at=agg.opened_at,
                    closed_at=agg.closed_at,
                    summary=agg.summary,
                )
            )
    cases.sort(key=lambda r: r.opened_at)
    return CountyState(units={r.code: r for r in rows.values()}, cases=cases, position=position, events=count)


OPEN_CASE_STATES = tuple(s.value for s in CaseState if s is not CaseState.CLOSED)
