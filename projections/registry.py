"""Units and officers as the projections need them: codes, badges, names and the unit tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.registry import Officer, Unit

COUNTY = "county"


@dataclass
class UnitInfo:
    """A unit's code, name and parent."""

    code: str
    name: str
    parent_id: UUID | None


@dataclass
class OfficerInfo:
    """An officer's badge, name and unit."""

    badge: str
    name: str
    unit_id: UUID


@dataclass
class Registry:
    """Folded from Unit and Officer events; gives each unit's and officer's rate scopes."""

    units: dict[UUID, UnitInfo] = field(default_factory=dict)
    officers: dict[UUID, OfficerInfo] = field(default_factory=dict)
    _scopes: dict[tuple[UUID | None, UUID | None], tuple[str, ...]] = field(default_factory=dict, repr=False)

    TOPICS = (
        get_topic(Unit.Registered),  # type: ignore[attr-defined]
        get_topic(Officer.Registered),  # type: ignore[attr-defined]
        get_topic(Officer.Transferred),  # type: ignore[attr-defined]
    )

    def apply(self, event: Any) -> bool:
        """Fold a registry event in; False if the event is not one."""
        kind = type(event)
        if kind is Unit.Registered:  # type: ignore[attr-defined]
            self.units[event.originator_id] = UnitInfo(event.code, event.name, event.parent_id)
        elif kind is Officer.Registered:  # type: ignore[attr-defined]
            self.officers[event.originator_id] = OfficerInfo(event.badge, event.name, event.unit_id)
        elif kind is Officer.Transferred:  # type: ignore[attr-defined]
            self.officers[event.originator_id].unit_id = event.unit_id
        else:
            return False
        self._scopes.clear()
        return True

    def unit_code(self, unit_id: UUID | None) -> str:
        """The unit's code ('' if unknown)."""
        info = self.units.get(unit_id) if unit_id else None
        return info.code if info else ""

    def badge(self, officer_id: UUID | None) -> str:
        """The officer's badge ('' if unknown)."""
        info = self.officers.get(officer_id) if officer_id else None
        return info.badge if info else ""

    def scopes(self, unit_id: UUID | None, officer_id: UUID | None = None) -> tuple[str, ...]:
        """``county``, the unit and each of its ancestors, and the officer: where a fact counts."""
        key = (unit_id, officer_id)
        known = self._scopes.get(key)
        if known is not None:
            return known
        scopes = [COUNTY]
        seen: set[UUID] = set()
        current = unit_id
        while current is not None and current in self.units and current not in seen:
            seen.add(current)
            info = self.units[current]
            scopes.append(f"unit:{info.code}")
            current = info.parent_id
        if officer_id is not None and officer_id in self.officers:
            scopes.append(f"officer:{self.officers[officer_id].badge}")
        self._scopes[key] = result = tuple(scopes)
        return result
