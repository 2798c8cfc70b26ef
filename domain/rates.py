"""The five rates (五个率) and the on-time rates, defined on counts (DESIGN §6).

Projections count facts per scope and period under the metric names below; a rate is a
numerator over a denominator of those counts, and a zero denominator is "n/a".

- scan rate         = encounters with at least one linked rating / encounters  (by encounter time)
- satisfaction rate = satisfied + basically satisfied ratings / ratings         (by rating time)
- callback rate     = callable cases reached on a callback / callable cases     (by opening time)
- rectification     = rectifications reported done / rectifications ordered     (by order time)
- implementation    = rectifications verified implemented / reported done       (by order time)
- on time, per step = steps done by their deadline / steps due                  (by deadline)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from domain.errors import ValidationError
from domain.ids import LOCAL_TZ
from domain.workflow import SlaStep


@dataclass(frozen=True)
class Period:
    """An ISO week (``2021-W47``) or a calendar month (``2021-11``) in Asia/Shanghai."""

    key: str
    start: datetime
    end: datetime  # exclusive

    @property
    def kind(self) -> str:
        """``week`` or ``month``."""
        return "week" if "W" in self.key else "month"


_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def period_keys(moment: datetime) -> tuple[str, str]:
    """Both periods a fact at ``moment`` counts in."""
    # Asia/Shanghai is a whole number of hours from UTC, so periods only change on UTC hours.
    return _period_keys_of_hour(int(moment.timestamp()) // 3600)


@lru_cache(maxsize=4096)
def _period_keys_of_hour(hour: int) -> tuple[str, str]:
    local = datetime.fromtimestamp(hour * 3600, LOCAL_TZ)
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}", f"{local:%Y-%m}"


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ)


def parse_period(text: str) -> Period:
    """``2021-W47`` or ``2021-11``; anything else is refused with the expected forms."""
    value = text.strip().upper()
    if m := _WEEK.match(value):
        year, week = int(m.group(1)), int(m.group(2))
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValidationError(f"{text!r} is not an ISO week of {year}") from None
        return Period(value, _local_midnight(monday), _local_midnight(monday + timedelta(days=7)))
    if m := _MONTH.match(value):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise ValidationError(f"{text!r} has no month {month}")
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return Period(value, _local_midnight(first), _local_midnight(following))
    raise ValidationError(f"period {text!r} must be an ISO week like 2021-W47 or a month like 2021-11")


def previous_period(period: Period) -> Period:
    """The week or month before ``period``."""
    if period.kind == "week":
        year, week, _ = (period.start - timedelta(days=7)).date().isocalendar()
        return parse_period(f"{year}-W{week:02d}")
    before = (period.start - timedelta(days=1)).date()
    return parse_period(f"{before:%Y-%m}")


def recent_periods(period: Period, count: int) -> list[Period]:
    """``count`` periods ending with ``period``, oldest first."""
    periods = [period]
    while len(periods) < count:
        periods.append(previous_period(periods[-1]))
    return periods[::-1]


def period_before(moment: datetime, kind: str) -> Period:
    """The last complete ISO week (``kind="week"``) or month before ``moment`` (Asia/Shanghai)."""
    local = moment.astimezone(LOCAL_TZ)
    if kind == "week":
        year, week, _ = (local - timedelta(days=7)).date().isocalendar()
        return parse_period(f"{year}-W{week:02d}")
    if kind == "month":
        before = local.date().replace(day=1) - timedelta(days=1)
        return parse_period(f"{before:%Y-%m}")
    raise ValidationError(f"period kind {kind!r} must be week or month")


@dataclass(frozen=True)
class Rate:
    """A rate with its numerator and denominator; ``value`` is None for n/a."""

    name: str
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        """numerator / denominator, or None when there is nothing to divide by."""
        return self.numerator / self.denominator if self.denominator else None

    def display(self) -> str:
        """``93.5%`` or ``n/a``."""
        return "n/a" if self.value is None else f"{self.value:.1%}"


#: rate name -> (numerator metric, denominator metric)
FIVE_RATES: dict[str, tuple[str, str]] = {
    "scan": ("encounters_rated", "encounters"),
    "satisfaction": ("ratings_ok", "ratings"),
    "callback": ("callable_reached", "callable_opened"),
    "rectification": ("rect_reported", "rect_ordered"),
    "implementation": ("rect_verified", "rect_reported"),
}

ON_TIME: dict[str, tuple[str, str]] = {
    f"on_time_{step.value}": (f"step_on_time:{step.value}", f"step_due:{step.value}") for step in SlaStep
}

#: Plain counts reported beside the rates.
COUNTS = (
    "encounters",
    "ratings",
    "ratings_satisfied",
    "ratings_basically_satisfied",
    "ratings_dissatisfied",
    "ratings_verified",
    "ratings_unverified",
    "cases_opened",
    "flagged",
    "breaches",
    "accountability",
    "commendations",
)


def rates_from_counts(counts: Mapping[str, int]) -> dict[str, Rate]:
    """The five rates and the on-time rates from a scope's counts for one period."""
    return {
        name: Rate(name, counts.get(num, 0), counts.get(den, 0))
        for name, (num, den) in {**FIVE_RATES, **ON_TIME}.items()
    }
