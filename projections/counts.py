"""Counts per scope, period and metric, from which the rates are computed.

Each projection that counts owns one counts table; the rates query adds them up. During
a batch the facts accumulate in memory and their sums are added to the table in one
statement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta, timezone
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


def schema(table: str) -> tuple[str, ...]:
    """The DDL of a counts table.

    On SQLite the table is ``WITHOUT ROWID`` (:data:`projections.store.SQLITE_ONLY`, left out on
    PostgreSQL): its rows live in the primary key's own B-tree instead of a table plus an index
    beside it, so a rebuild, which inserts about one counts row per event, writes one tree, not two.
    """
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (scope TEXT NOT NULL, period TEXT NOT NULL, "
        f"metric TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (scope, period, metric)){SQLITE_ONLY}",
    )


class Counts:
    """Pending count deltas of one batch."""

    def __init__(self, table: str) -> None:
        self.table = table
        # While folding, each fact is kept as it comes, one list append on the hot path; at flush
        # the facts are spread over each scope, period and metric and counted, mostly in C
        # (itertools and Counter.update). A fact of several metrics is first counted per
        # (scope, period, metrics), then spread over its metrics: far fewer cells.
        self.facts: list[tuple[Sequence[str], tuple[str, str], tuple[str, ...]]] = []
        self.grouped: list[tuple[Sequence[str], tuple[str, str], tuple[tuple[str, ...]]]] = []
        # The periods of each UTC hour seen: periods change only on UTC hours (see period_keys).
        self.periods: dict[Hashable, tuple[str, str]] = {}

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
        if len(metrics) == 1:
            self.facts.append((scopes, periods, metrics))
        else:
            self.grouped.append((scopes, periods, (metrics,)))

    @property
    def deltas(self) -> Counter[tuple[str, str, str]]:
        """The pending counts per (scope, period, metric)."""
        spread: Counter[tuple[str, str, str]] = Counter()
        _spread(spread, self.facts)
        if self.grouped:
            by_metrics: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
            _spread(by_metrics, self.grouped)
            get = spread.get  # not ``+=``: a Counter's missing key costs a call of ``__missing__``
            for (scope, period, metrics), amount in by_metrics.items():
                for metric in metrics:
                    cell = (scope, period, metric)
                    spread[cell] = get(cell, 0) + amount
        return spread

    def flush(self, cur: Cursor) -> None:
        """Add the deltas to the table."""
        self.write(cur, self.rows())

    def rows(self) -> list[tuple[str, str, str, int]]:
        """The pending deltas as rows, in key order, and forget them.

        Worked out before the batch's transaction begins (it holds the store's write lock, which
        another projection's process may be waiting for: see :meth:`Projection.prepare`). In
        key order, the table's tree is walked once from left to right rather than jumped about
        in, which makes the inserts of a large batch markedly cheaper.
        """
        rows = sorted([(s, p, m, v) for (s, p, m), v in self.deltas.items()])
        self.forget()
        return rows

    def write(self, cur: Cursor, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Add rows made by :meth:`rows` to the table."""
        cur.executemany(
            f"INSERT INTO {self.table} (scope, period, metric, value) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (scope, period, metric) DO UPDATE SET value = {self.table}.value + excluded.value",
            rows,
        )

    def forget(self) -> None:
        """Drop pending deltas."""
        self.facts = []
        self.grouped = []


def _spread(into: Counter[Any], facts: Sequence[tuple[Sequence[str], tuple[str, str], tuple[Any, ...]]]) -> None:
    """Count every cell (scope, period, metric) of ``facts`` into ``into``.

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
