"""The rates query: the five rates and the on-time rates of a scope in a period."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import ValidationError
from domain.rates import COUNTS, Period, Rate, rates_from_counts
from projections import activity, cases
from projections.counts import read_counts
from projections.registry import COUNTY
from projections.store import ViewStore

COUNT_TABLES = (activity.METRICS, cases.METRICS)
_SCOPE = re.compile(r"^(county|unit:[A-Z0-9][A-Z0-9-]{1,31}|officer:[A-Z0-9]{4,12})$")


def parse_scope(text: str) -> str:
    """``county``, ``unit:CODE`` or ``officer:BADGE`` (codes and badges upper-cased)."""
    kind, sep, key = text.strip().partition(":")
    value = f"{kind.lower()}{sep}{key.upper()}" if sep else kind.lower()
    if not _SCOPE.match(value):
        raise ValidationError(f"scope {text!r} must be county, unit:CODE or officer:BADGE")
    return value


@dataclass(frozen=True)
class RatesReport:
    """A scope's rates and counts in one period."""

    scope: str
    period: str
    rates: dict[str, Rate]
    counts: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        """Plain data: each rate with numerator, denominator and value (None for n/a)."""
        return {
            "scope": self.scope,
            "period": self.period,
            "rates": {
                name: {"numerator": r.numerator, "denominator": r.denominator, "value": r.value}
                for name, r in self.rates.items()
            },
            "counts": self.counts,
        }


def rates(views: ViewStore, scope: str, period: Period) -> RatesReport:
    """The rates of ``scope`` (``county``, ``unit:CODE``, ``officer:BADGE``) in ``period``."""
    counts = read_counts(views, COUNT_TABLES, scope or COUNTY, period.key)
    plain = {name: counts.get(name, 0) for name in COUNTS}
    return RatesReport(scope, period.key, rates_from_counts(counts), plain)
