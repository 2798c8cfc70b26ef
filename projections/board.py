"""The case board: every case with its state, unit, flags, the steps it waits on and their deadlines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from projections.store import ViewStore

TABLE = "pj_board"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "case_ref TEXT PRIMARY KEY, case_id TEXT NOT NULL, kind TEXT NOT NULL, intake TEXT NOT NULL, "
    "unit_code TEXT NOT NULL, officer_badge TEXT NOT NULL, state TEXT NOT NULL, round INTEGER NOT NULL, "
    "flagged INTEGER NOT NULL, flag_reason TEXT, opened_at TEXT NOT NULL, closed_at TEXT, outcome TEXT, "
    "citizen_accepted INTEGER, waiting TEXT NOT NULL, deadlines TEXT NOT NULL, next_deadline TEXT, "
    "summary TEXT NOT NULL, version INTEGER NOT NULL, position BIGINT NOT NULL, private TEXT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_deadline ON {TABLE} (next_deadline)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_unit ON {TABLE} (unit_code, state)",
    # Resuming a case after a restart finds its row by the aggregate id.
    f"CREATE INDEX IF NOT EXISTS {TABLE}_case_id ON {TABLE} (case_id)",
)
COLUMNS = (
    "case_ref",
    "case_id",
    "kind",
    "intake",
    "unit_code",
    "officer_badge",
    "state",
    "round",
    "flagged",
    "flag_reason",
    "opened_at",
    "closed_at",
    "outcome",
    "citizen_accepted",
    "waiting",
    "deadlines",
    "next_deadline",
    "summary",
    "version",
    "position",
    "private",
)
UPSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    f"ON CONFLICT (case_ref) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
)


def ts(moment: datetime | None) -> str | None:
    """A moment stored as sortable UTC text (``%Y-%m-%dT%H:%M:%S.%fZ``)."""
    if moment is None:
        return None
    # A step's deadline is written with its case's board row and its ledger row: remember recent
    # texts. A fold-1 moment equals its fold-0 twin (an hour apart) as a key: never remembered.
    return utc_text(moment) if moment.fold else _remembered_utc_text(moment)


def utc_text(moment: datetime) -> str:
    """:func:`ts` of a moment written once (a step run's times): not remembered, which costs a third
    more than writing it when it is not written again."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # formatted below the year is padded, by strftime it is not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime, written faster (a third cheaper than from isoformat).
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - %-formatting is the fastest here
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond
    )


_remembered_utc_text = lru_cache(maxsize=4096)(utc_text)


def from_ts(text: str) -> datetime:
    """Inverse of :func:`ts`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def from_opt(text: str | None) -> datetime | None:
    """Inverse of :func:`ts` for a moment that may be missing."""
    return None if text is None else from_ts(text)


@dataclass(frozen=True)
class BoardRow:
    """One case on the board."""

    ref: str
    kind: str
    intake: str
    unit_code: str
    officer_badge: str
    state: str
    round: int
    flagged: bool
    opened_at: datetime
    closed_at: datetime | None
    waiting: list[str]
    deadlines: dict[str, datetime]
    next_deadline: datetime | None
    summary: str

    def overdue_steps(self, now: datetime) -> list[str]:
        """The steps whose deadline has passed at ``now``."""
        return [step for step, due in self.deadlines.items() if due < now]


_SELECT = (
    "SELECT case_ref, kind, intake, unit_code, officer_badge, state, round, flagged, opened_at, closed_at, "
    f"waiting, deadlines, next_deadline, summary FROM {TABLE}"
)


def _row(r: tuple[Any, ...]) -> BoardRow:
    deadlines = {k: from_ts(v) for k, v in json.loads(r[11]).items()}
    return BoardRow(
        ref=r[0],
        kind=r[1],
        intake=r[2],
        unit_code=r[3],
        officer_badge=r[4],
        state=r[5],
        round=int(r[6]),
        flagged=bool(r[7]),
        opened_at=from_ts(r[8]),
        closed_at=from_opt(r[9]),
        waiting=[w for w in r[10].split(",") if w],
        deadlines=deadlines,
        next_deadline=from_opt(r[12]),
        summary=r[13],
    )


def cases(
    views: ViewStore,
    *,
    state: str | None = None,
    unit: str | None = None,
    overdue_at: datetime | None = None,
    limit: int = 10_000,
) -> list[BoardRow]:
    """Cases on the board; ``overdue_at`` keeps those with a deadline passed at that moment, most overdue first.

    A step done exactly at its deadline is on time, so a deadline is passed only after it.
    """
    where: list[str] = []
    params: list[object] = []
    if state == "open":
        where.append("state <> 'closed'")
    elif state:
        where.append("state = ?")
        params.append(state)
    if unit:
        where.append("unit_code = ?")
        params.append(unit)
    order = "opened_at"
    if overdue_at is not None:
        where.append("next_deadline IS NOT NULL AND next_deadline < ?")
        params.append(ts(overdue_at))
        order = "next_deadline"
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = views.query(f"{_SELECT}{clause} ORDER BY {order} LIMIT ?", (*params, limit))
    return [_row(r) for r in rows]


def case_row(views: ViewStore, ref: str) -> BoardRow | None:
    """One case's board row."""
    rows = views.query(f"{_SELECT} WHERE case_ref = ?", (ref,))
    return _row(rows[0]) if rows else None
