"""SLA deadline arithmetic of DESIGN §5: step limits, China's working days, warnings and breaches.

Every function takes timezone-aware datetimes in any zone and returns them in ``LOCAL_TZ``
(Asia/Shanghai), because working days are local dates. Arithmetic is done on instants (UTC),
so a UTC input and the same moment at +08:00 give the same answer.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any, NamedTuple

import holidays

from domain.errors import ValidationError
from domain.ids import LOCAL_TZ
from domain.workflow import SlaStep

#: The steps the policy file gives limits for; rectification's due date comes with its order.
POLICY_STEPS = frozenset(SlaStep) - {SlaStep.RECTIFICATION}
_ONE_DAY = timedelta(days=1)


class CalendarKind(StrEnum):
    """The clock a step's limit runs on."""

    WALL = "wall"  # hours, day and night, holidays included
    WORKING = "working"  # China's official working days, counted by local date


@dataclass(frozen=True)
class StepLimit:
    """How long a step may take: ``amount`` hours on the wall clock, or working days."""

    calendar: CalendarKind
    amount: float

    def __post_init__(self) -> None:
        if not isinstance(self.calendar, CalendarKind):
            raise ValidationError(f"calendar must be one of {[k.value for k in CalendarKind]}, got {self.calendar!r}")
        if not _is_number(self.amount) or self.amount <= 0:
            raise ValidationError(f"limit amount must be a positive number, got {self.amount!r}")


@dataclass(frozen=True)
class SlaPolicy:
    """The limits of every step, the flagged-case factor, the warning fraction and the rectification default."""

    limits: Mapping[SlaStep, StepLimit]
    flagged_factor: float = 0.5
    warning_fraction: float = 0.8
    rectification_days: float = 15.0

    def __post_init__(self) -> None:
        if SlaStep.RECTIFICATION in self.limits:
            raise ValidationError("limits.rectification: its due date comes with the order; set rectification_days")
        if unknown := sorted(str(s) for s in set(self.limits) - POLICY_STEPS):
            raise ValidationError(f"SLA policy has limits for unknown steps: {', '.join(unknown)}")
        if missing := sorted(POLICY_STEPS - self.limits.keys()):
            raise ValidationError(f"SLA policy has no limit for: {', '.join(f'limits.{s}' for s in missing)}")
        _check("flagged_factor", self.flagged_factor, 0 < self.flagged_factor <= 1, "in (0, 1]")
        _check("warning_fraction", self.warning_fraction, 0 < self.warning_fraction < 1, "in (0, 1)")
        _check("rectification_days", self.rectification_days, self.rectification_days > 0, "positive")
        # A policy is shared by every scheduler job; nobody may change it under their feet.
        object.__setattr__(self, "limits", MappingProxyType(dict(self.limits)))

    @classmethod
    def default(cls) -> SlaPolicy:
        """The defaults of DESIGN §5, from the packaged ``domain/sla_policy.toml``."""
        text = resources.files("domain").joinpath("sla_policy.toml").read_text(encoding="utf-8")
        return cls.from_toml(text)

    @classmethod
    def from_toml(cls, text: str) -> SlaPolicy:
        """Parse a policy file; a missing, unknown or out-of-range key raises ``ValidationError`` naming it."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValidationError(f"SLA policy is not valid TOML: {error}") from None
        _refuse_unknown_keys("", data, {"limits", "flagged_factor", "warning_fraction", "rectification_days"})
        raw_limits = data.get("limits")
        if not isinstance(raw_limits, dict):
            raise ValidationError("SLA policy needs a [limits] table with one table per step")
        limits: dict[SlaStep, StepLimit] = {}
        for name, table in raw_limits.items():
            if name not in set(SlaStep):
                known = ", ".join(sorted(POLICY_STEPS))
                raise ValidationError(f"limits.{name}: unknown step {name!r} (known: {known})")
            limits[SlaStep(name)] = _parse_limit(f"limits.{name}", table)
        return cls(
            limits,
            flagged_factor=_number(data, "flagged_factor", cls.flagged_factor),
            warning_fraction=_number(data, "warning_fraction", cls.warning_fraction),
            rectification_days=_number(data, "rectification_days", cls.rectification_days),
        )


class WorkingCalendar:
    """China's official working days (make-up weekends included), by local date in Asia/Shanghai."""

    def __init__(self) -> None:
        # Filled a year at a time on first use; two threads loading the same year compute the
        # same set and one of them wins the dict assignment, so no lock is needed.
        self._years: dict[int, frozenset[date]] = {}
        self._nth: dict[tuple[date, int], date] = {}
        self._days: dict[date, _Day] = {}

    def is_working_day(self, day: date) -> bool:
        """True when ``day`` is an official working day (a 调休 Saturday is one; a holiday Monday is not)."""
        if isinstance(day, datetime):  # a datetime is a date too, but would never equal one in the set below
            _require_aware("day", day)
            day = day.astimezone(LOCAL_TZ).date()
        working = self._years.get(day.year)
        if working is None:
            official = holidays.country_holidays("CN", years=day.year)
            first = date(day.year, 1, 1)
            year_days = (first + timedelta(days=n) for n in range(366))
            working = frozenset(d for d in year_days if d.year == day.year and official.is_working_day(d))
            self._years[day.year] = working
        return day in working

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time of day on the ``days``-th working day after ``start``'s local date."""
        _require_aware("start", start)
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ValidationError(f"days must be a whole number >= 0, got {days!r}")
        local = start.astimezone(LOCAL_TZ)
        return datetime.combine(self._nth_working_day_after(local.date(), days), local.time(), tzinfo=LOCAL_TZ)

    def _nth_working_day_after(self, day: date, days: int) -> date:
        # Every case started on the same date shares the answer: remember it.
        key = (day, days)
        known = self._nth.get(key)
        if known is None:
            known = day
            for _ in range(days):
                known += _ONE_DAY
                while not self.is_working_day(known):
                    known += _ONE_DAY
            self._nth[key] = known
        return known

    def _day(self, day: date) -> _Day:
        """Whether ``day`` is a working day, and the local midnight that ends it (local and UTC).

        A date's answer never changes (the official calendar of its year and the zone's rules
        are fixed), so it is worked out once and remembered: the two walks below visit a few
        days per step clock, and every case started in the same week visits the same days.
        """
        known = self._days.get(day)
        if known is None:
            end = _midnight(day + _ONE_DAY)
            known = self._days[day] = _Day(self.is_working_day(day), end, end.astimezone(UTC))
        return known

    def add_working_time(self, start: datetime, hours: float) -> datetime:
        """When ``hours`` of working time (24 h per working day) have passed; on a day off the count starts
        at the next working day's midnight, so even ``hours=0`` from a day off lands there."""
        _require_aware("start", start)
        if not _is_number(hours) or hours < 0:
            raise ValidationError(f"hours must be a number >= 0, got {hours!r}")
        remaining = timedelta(hours=hours)
        # Walk day by day from the start's local date, on instants (UTC): what is left of each
        # working day is the time to its closing midnight.
        day = start.astimezone(LOCAL_TZ).date()
        moment = start.astimezone(UTC)
        while True:
            working, _, midnight = self._day(day)
            if working:
                left_today = midnight - moment
                if remaining <= left_today:
                    return (moment + remaining).astimezone(LOCAL_TZ)
                remaining -= left_today
            moment = midnight
            day += _ONE_DAY

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Hours of working time from ``start`` to ``end``; negative when ``end`` comes first."""
        _require_aware("start", start)
        _require_aware("end", end)
        if end < start:
            return -self.working_hours_between(end, start)
        total = timedelta()
        # Compared as local times (as people read them), measured on instants (UTC).
        local, until = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
        day, moment, until_utc = local.date(), start.astimezone(UTC), end.astimezone(UTC)
        while local < until:
            working, next_midnight, next_midnight_utc = self._day(day)
            if working:
                total += (next_midnight_utc if next_midnight <= until else until_utc) - moment
            local, moment = next_midnight, next_midnight_utc
            day += _ONE_DAY
        return total / timedelta(hours=1)


class _Day(NamedTuple):
    """What the working-time walks need of one local date."""

    working: bool
    #: The local midnight that ends the day, as a local time and as an instant (UTC).
    ends: datetime
    ends_utc: datetime


def limit_for(policy: SlaPolicy, step: SlaStep, *, flagged: bool) -> StepLimit:
    """The step's limit, multiplied by ``flagged_factor`` when the step started after the case was flagged."""
    if step is SlaStep.RECTIFICATION:
        raise ValidationError("rectification has no policy limit: its due date comes with the order")
    limit = policy.limits[step]
    return StepLimit(limit.calendar, limit.amount * policy.flagged_factor) if flagged else limit


def deadline(
    policy: SlaPolicy,
    calendar: WorkingCalendar,
    step: SlaStep,
    started_at: datetime,
    *,
    flagged: bool,
    due_at: datetime | None = None,
) -> datetime:
    """When the step breaches: its limit after ``started_at``, or ``due_at`` for rectification."""
    _require_aware("started_at", started_at)
    if step is SlaStep.RECTIFICATION:
        return _rectification_due(started_at, due_at)
    if due_at is not None:
        raise ValidationError(f"due_at applies only to rectification, not to {step}")
    return _limit_end(calendar, limit_for(policy, step, flagged=flagged), started_at)


def _limit_end(calendar: WorkingCalendar, limit: StepLimit, started_at: datetime) -> datetime:
    """When ``limit`` runs out after ``started_at``."""
    if limit.calendar is CalendarKind.WALL:
        return _plus(started_at, timedelta(hours=limit.amount))
    if float(limit.amount).is_integer():
        return calendar.add_working_days(started_at, int(limit.amount))
    # A fraction of a day (a halved 3 or 5 days) has no "same time of day": count working time.
    return calendar.add_working_time(started_at, limit.amount * 24)


def warning_at(
    policy: SlaPolicy,
    calendar: WorkingCalendar,
    step: SlaStep,
    started_at: datetime,
    *,
    flagged: bool,
    due_at: datetime | None = None,
) -> datetime:
    """When the step warns: ``warning_fraction`` of its limit, measured on the step's own calendar."""
    return step_clock(policy, calendar, step, started_at, flagged=flagged, due_at=due_at)[0]


def step_clock(
    policy: SlaPolicy,
    calendar: WorkingCalendar,
    step: SlaStep,
    started_at: datetime,
    *,
    flagged: bool,
    due_at: datetime | None = None,
) -> tuple[datetime, datetime]:
    """``(warning, deadline)`` of a step, the deadline computed once for both.

    The warning comes at ``warning_fraction`` of the limit, measured on the step's own calendar.
    (Every case projection and scheduler replay computes this for each step started: the
    limit is looked up once for both answers.)
    """
    _require_aware("started_at", started_at)
    fraction = policy.warning_fraction
    if step is SlaStep.RECTIFICATION:
        end = _rectification_due(started_at, due_at)
    else:
        if due_at is not None:
            raise ValidationError(f"due_at applies only to rectification, not to {step}")
        limit = limit_for(policy, step, flagged=flagged)
        end = _limit_end(calendar, limit, started_at)
        if limit.calendar is CalendarKind.WORKING:
            # The fraction of the working time up to the deadline. From a working day that is exactly
            # fraction x days x 24 h; from a day off the same-time-of-day rule leaves less than days x 24 h
            # of working time, and measuring the full amount would put the warning after the breach.
            hours = fraction * calendar.working_hours_between(started_at, end)
            return calendar.add_working_time(started_at, hours), end
    return _plus(started_at, _elapsed(started_at, end) * fraction), end


def _rectification_due(started_at: datetime, due_at: datetime | None) -> datetime:
    if due_at is None:
        raise ValidationError("rectification needs the due date given with its order (due_at)")
    _require_aware("due_at", due_at)
    if due_at <= started_at:
        raise ValidationError(f"due_at {due_at.isoformat()} is not after the order at {started_at.isoformat()}")
    return due_at.astimezone(LOCAL_TZ)


def _require_aware(name: str, moment: datetime) -> None:
    # A naive time is ambiguous by eight hours between UTC and Shanghai: refuse rather than guess.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"{name} must carry a time zone, got naive {moment.isoformat()}")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LOCAL_TZ)


def _elapsed(start: datetime, end: datetime) -> timedelta:
    # Subtracting two datetimes of the same ZoneInfo ignores offset changes; UTC never has any.
    return end.astimezone(UTC) - start.astimezone(UTC)


def _plus(moment: datetime, delta: timedelta) -> datetime:
    return (moment.astimezone(UTC) + delta).astimezone(LOCAL_TZ)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(key: str, value: float, ok: bool, expected: str) -> None:
    if not _is_number(value) or not ok:
        raise ValidationError(f"{key} must be a number {expected}, got {value!r}")


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if not _is_number(value):
        raise ValidationError(f"{key} must be a number, got {value!r}")
    return float(value)


def _refuse_unknown_keys(where: str, table: Mapping[str, Any], known: set[str]) -> None:
    # A misspelt key would otherwise be ignored silently and the default would apply.
    if unknown := sorted(set(table) - known):
        prefix = f"{where}." if where else ""
        raise ValidationError(f"unknown key {prefix}{unknown[0]} (expected one of: {', '.join(sorted(known))})")


def _parse_limit(where: str, table: object) -> StepLimit:
    if not isinstance(table, dict):
        raise ValidationError(f"{where} must be a table with calendar and an amount")
    raw_calendar = table.get("calendar")
    if raw_calendar not in [kind.value for kind in CalendarKind]:
        raise ValidationError(f"{where}.calendar: unknown calendar {raw_calendar!r} (expected 'wall' or 'working')")
    calendar = CalendarKind(raw_calendar)
    # Amounts are stored as hours (wall) or days (working); minutes are only a convenience for the file.
    per_unit = {"hours": 1, "minutes": 60} if calendar is CalendarKind.WALL else {"days": 1}
    _refuse_unknown_keys(where, table, {"calendar", *per_unit})
    given = [unit for unit in per_unit if unit in table]
    if len(given) != 1:
        raise ValidationError(f"{where}: give exactly one of {', '.join(per_unit)} for a {calendar} calendar")
    value = table[given[0]]
    if not _is_number(value) or value <= 0:
        raise ValidationError(f"{where}.{given[0]} must be a positive number, got {value!r}")
    return StepLimit(calendar, value / per_unit[given[0]])
