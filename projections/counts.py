"""Counts per scope, period and metric, from which the rates are computed.

Each projection that counts owns one counts table; the rates query adds them up. During
a batch the deltas accumulate in memory and are added to the table in one statement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from domain.rates import period_keys
from projections.store import Cursor, ViewStore


def schema(table: str) -> tuple[str, ...]:
    """The DDL of a counts table."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (scope TEXT NOT NULL, period TEXT NOT NULL, "
        "metric TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (scope, period, metric))",
    )


class Counts:
    """Pending count deltas of one batch."""

    def __init__(self, table: str) -> None:
        self.table = table
        # Kept per (scopes, periods, metrics) while folding, spread over each scope, period and metric
        # at flush: one dictionary update per fact on the hot path.
        self.pending: Counter[tuple[tuple[str, ...], tuple[str, str], tuple[str, ...]]] = Counter()

    def add(self, scopes: Sequence[str], moment: datetime, *metrics: str) -> None:
        """Count each of ``metrics`` once for every scope, in the week and the month of ``moment``."""
        self.pending[(tuple(scopes), period_keys(moment), metrics)] += 1

    @property
    def deltas(self) -> Counter[tuple[str, str, str]]:
        """The pending counts per (scope, period, metric)."""
        spread: Counter[tuple[str, str, str]] = Counter()
        for (scopes, periods, metrics), amount in self.pending.items():
            for scope in scopes:
                for period in periods:
                    for metric in metrics:
                        spread[(scope, period, metric)] += amount
        return spread

    def flush(self, cur: Cursor) -> None:
        """Add the deltas to the table."""
        rows = [(s, p, m, v) for (s, p, m), v in self.deltas.items() if v]
        cur.executemany(
            f"INSERT INTO {self.table} (scope, period, metric, value) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (scope, period, metric) DO UPDATE SET value = {self.table}.value + excluded.value",
            rows,
        )
        self.pending.clear()

    def forget(self) -> None:
        """Drop pending deltas."""
        self.pending.clear()


def read_counts(views: ViewStore, tables: Sequence[str], scope: str, period: str) -> dict[str, int]:
    """Every metric of ``scope`` in ``period``, summed over the counts tables."""
    totals: Counter[str] = Counter()
    for table in tables:
        for metric, value in views.query(
            f"SELECT metric, value FROM {table} WHERE scope = ? AND period = ?",
            (scope, period),
        ):
            totals[metric] += int(value)
    return dict(totals)
