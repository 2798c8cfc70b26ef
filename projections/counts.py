"""Counts per scope, period and metric, from which the rates are computed.

Each projection that counts owns one counts table: one row per scope and period, one column
per metric the projection counts (its :class:`Metrics`); the rates query adds the tables up.
During a batch the facts accumulate in memory and their sums are added to the table in one
statement. A row holds every metric of its scope and period, not one row per metric: a
rebuild writes about an eighth as many rows (the activity counts: 86,335 rows instead of
615,588 for a million events), and a rates query reads one row per table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from itertools import chain, product, starmap
from typing import Any

from domain.ids import LOCAL_TZ
from domain.rates import period_keys
from projections.store import SQLITE_ONLY, Cursor, ViewStore

#: Per fixed UTC offset met: whether it is a whole number of hours.
_WHOLE_HOURS: dict[timezone, bool] = {}
_HOUR = timedelta(hours=1)
_NOTHING = timedelta(0)


#: The periods of each local date (Asia/Shanghai) met, by its ordinal.
_PERIODS_OF_DAY: dict[int, tuple[str, str]] = {}


def _periods(moment: datetime) -> tuple[str, str]:
    """:func:`period_keys` of ``moment``, worked out once per local date.

    The periods are those of the local date at the start of the moment's UTC hour (periods change
    only on UTC hours), which names them: a date seen before costs a lookup, not the formatting.
    """
    day = datetime.fromtimestamp(int(moment.timestamp()) // 3600 * 3600, LOCAL_TZ).toordinal()
    periods = _PERIODS_OF_DAY.get(day)
    if periods is None:
        periods = _PERIODS_OF_DAY[day] = period_keys(moment)
    return periods


_COLUMN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Metrics:
    """What one counts table counts: its name and its metrics, each stored in a column of its own."""

    table: str
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        bad = [name for name in self.names if not _COLUMN.match(self.column(name))]
        if bad or len(set(self.names)) != len(self.names) or not self.names:
            msg = f"{self.table}: metric names must be distinct and make column names: {bad or self.names}"
            raise ValueError(msg)

    @staticmethod
    def column(name: str) -> str:
        """The column of a metric (``step_due:feedback`` is kept in ``step_due__feedback``)."""
        return name.replace(":", "__")

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The metrics' columns, in order."""
        return tuple(self.column(name) for name in self.names)

    @cached_property
    def index(self) -> dict[str, int]:
        """Each metric's place in a row (after the scope and the period)."""
        return {name: 2 + place for place, name in enumerate(self.names)}

    def schema(self) -> tuple[str, ...]:
        """The DDL of the table.

        On SQLite the table is ``WITHOUT ROWID`` (:data:`projections.store.SQLITE_ONLY`, left out
        on PostgreSQL): its rows live in the primary key's own B-tree instead of a table plus an
        index beside it, so a rebuild writes one tree, not two.
        """
        metrics = ", ".join(f"{column} BIGINT NOT NULL DEFAULT 0" for column in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} (scope TEXT NOT NULL, period TEXT NOT NULL, {metrics}, "
            f"PRIMARY KEY (scope, period)){SQLITE_ONLY}",
        )

    @cached_property
    def upsert(self) -> str:
        """Adds a row of deltas to the table."""
        columns = self.columns
        return (
            f"INSERT INTO {self.table} (scope, period, {', '.join(columns)}) "
            f"VALUES ({', '.join('?' * (2 + len(columns)))}) ON CONFLICT (scope, period) DO UPDATE SET "
            + ", ".join(f"{c} = {self.table}.{c} + excluded.{c}" for c in columns)
        )

    @cached_property
    def select(self) -> str:
        """Reads a scope's row of one period."""
        return f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE scope = ? AND period = ?"


class Counts:
    """Pending count deltas of one batch."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # While folding, each fact is kept as it comes, one list append on the hot path; at flush
        # the facts are spread over each scope and period and counted, mostly in C (itertools and
        # Counter.update), per (scope, period, the fact's metrics together): far fewer keys than
        # one per metric. Only then are the metrics put in their columns.
        self.facts: list[tuple[Sequence[str], tuple[str, str], tuple[tuple[str, ...]]]] = []
        # The periods of each UTC hour seen: periods change only on UTC hours (see period_keys).
        self.periods: dict[Hashable, tuple[str, str]] = {}
        # The places in a row of each tuple of metrics met.
        self.places: dict[tuple[str, ...], tuple[int, ...]] = {}

    def add(self, scopes: Sequence[str], moment: datetime, *metrics: str) -> None:
        """Count each of ``metrics`` once for every scope, in the week and the month of ``moment``."""
        self.add_all(scopes, moment, metrics)

    def add_all(self, scopes: Sequence[str], moment: datetime, metrics: tuple[str, ...]) -> None:
        """:meth:`add` with the metrics as one tuple."""
        zone = moment.tzinfo
        # The hour on the moment's own clock, with its offset, names one UTC hour when the offset
        # is a whole number of hours (a fixed offset, as every moment read from the log has): far
        # cheaper to work out than the UTC hour itself, which is the key otherwise.
        if type(zone) is timezone and _WHOLE_HOURS.get(zone, False):
            hour: Hashable = (moment.toordinal() * 24 + moment.hour, zone)
        else:
            hour = int(moment.timestamp()) // 3600
            if type(zone) is timezone and zone not in _WHOLE_HOURS:
                _WHOLE_HOURS[zone] = zone.utcoffset(None) % _HOUR == _NOTHING
        periods = self.periods.get(hour)
        if periods is None:
            periods = self.periods[hour] = _periods(moment)
        self.facts.append((scopes, periods, (metrics,)))

    def _by_metrics(self) -> Counter[tuple[str, str, tuple[str, ...]]]:
        """The pending counts per (scope, period, metrics counted together)."""
        spread: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
        _spread(spread, self.facts)
        return spread

    @property
    def deltas(self) -> Counter[tuple[str, str, str]]:
        """The pending counts per (scope, period, metric)."""
        cells: Counter[tuple[str, str, str]] = Counter()
        for (scope, period, metrics), amount in self._by_metrics().items():
            for metric in metrics:
                cells[scope, period, metric] += amount
        return cells

    def flush(self, cur: Cursor) -> None:
        """Add the deltas to the table."""
        self.write(cur, self.rows())

    def rows(self) -> list[list[Any]]:
        """The pending deltas as rows (scope, period, then each metric's delta), in key order, and
        forget them. A metric the table does not count is a KeyError (a projection's mistake).

        Worked out before the batch's transaction begins (it holds the store's write lock, which
        another projection's process may be waiting for: see :meth:`Projection.prepare`). In
        key order, the table's tree is walked once from left to right rather than jumped about
        in, which makes the inserts of a large batch markedly cheaper.
        """
        index = self.metrics.index
        places = self.places
        empty = [0] * len(index)
        rows: dict[tuple[str, str], list[Any]] = {}
        get = rows.get
        for (scope, period, metrics), amount in self._by_metrics().items():
            row = get((scope, period))
            if row is None:
                row = rows[scope, period] = [scope, period, *empty]
            found = places.get(metrics)
            if found is None:
                found = places[metrics] = tuple(index[metric] for metric in metrics)
            for place in found:
                row[place] += amount
        self.forget()
        return [rows[key] for key in sorted(rows)]

    def write(self, cur: Cursor, rows: Sequence[Sequence[Any]]) -> None:
        """Add rows made by :meth:`rows` to the table."""
        cur.executemany(self.metrics.upsert, rows)

    def forget(self) -> None:
        """Drop pending deltas."""
        self.facts = []


def _spread(into: Counter[Any], facts: Sequence[tuple[Sequence[str], tuple[str, str], tuple[Any, ...]]]) -> None:
    """Count every (scope, period, metrics) of ``facts`` into ``into``.

    Equal facts are counted first (in C); the cells of a fact seen once are counted in C too,
    those of a repeated fact once with its number.
    """
    grouped: Counter[tuple[Sequence[str], tuple[str, str], tuple[Any, ...]]] = Counter()
    grouped.update(facts)
    into.update(chain.from_iterable(starmap(product, [fact for fact, amount in grouped.items() if amount == 1])))
    get = into.get
    for fact, amount in grouped.items():
        if amount > 1:
            for cell in product(*fact):
                into[cell] = get(cell, 0) + amount


def read_counts(views: ViewStore, tables: Sequence[Metrics], scope: str, period: str) -> dict[str, int]:
    """Every metric of ``scope`` in ``period`` counted at least once, summed over the counts tables."""
    totals: Counter[str] = Counter()
    for table in tables:
        for row in views.query(table.select, (scope, period)):
            for metric, value in zip(table.names, row, strict=True):
                if value:
                    totals[metric] += int(value)
    return dict(totals)
