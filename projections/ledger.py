"""The SLA ledger: per case, step, round (and restart): clock start, deadline, completion, verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections.board import from_opt, from_ts, ts, utc_text
from projections.store import ViewStore

TABLE = "pj_ledger"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "case_ref TEXT NOT NULL, step TEXT NOT NULL, round INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "unit_code TEXT NOT NULL, started_at TEXT NOT NULL, warn_at TEXT NOT NULL, deadline TEXT NOT NULL, "
    "flagged INTEGER NOT NULL, ended_at TEXT, status TEXT NOT NULL, warned_at TEXT, breached_at TEXT, "
    "PRIMARY KEY (case_ref, step, round, seq))",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_running ON {TABLE} (status, deadline)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_warning ON {TABLE} (status, warn_at)",
)

RUNNING, ON_TIME, LATE, MISSED, CANCELLED = "running", "on_time", "late", "missed", "cancelled"


@dataclass
class StepRun:
    """One run of one step's clock."""

    case_ref: str
    step: str
    round: int
    seq: int
    unit_code: str
    started_at: datetime
    warn_at: datetime
    deadline: datetime
    flagged: bool
    ended_at: datetime | None = None
    status: str = RUNNING
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    #: How a case's timeline shows this run while it runs (``"feedback due 2021-09-22 10:00"``):
    #: made once, by the cases projection, for all the lines that show it. Not stored.
    shown: str | None = field(default=None, compare=False, repr=False)
    #: The stored text of the moments that never change (start, warning, deadline), made once
    #: for every time the row is written. Not stored.
    fixed: tuple[str, str, str] | None = field(default=None, compare=False, repr=False)

    def values(self) -> tuple[Any, ...]:
        """The row to store."""
        started, warn, deadline = self.fixed or self._fixed()
        return (
            self.case_ref,
            self.step,
            self.round,
            self.seq,
            self.unit_code,
            started,
            warn,
            deadline,
            int(self.flagged),
            None if self.ended_at is None else utc_text(self.ended_at),
            self.status,
            None if self.warned_at is None else utc_text(self.warned_at),
            None if self.breached_at is None else utc_text(self.breached_at),
        )

    def deadline_text(self) -> str:
        """The deadline as stored (``ts``)."""
        return (self.fixed or self._fixed())[2]

    def _fixed(self) -> tuple[str, str, str]:
        # Made once per run (and kept): the times need not be remembered by ``ts`` as well.
        self.fixed = fixed = (utc_text(self.started_at), utc_text(self.warn_at), utc_text(self.deadline))
        return fixed

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> StepRun:
        """Read a stored row back."""
        return cls(
            r[0],
            r[1],
            int(r[2]),
            int(r[3]),
            r[4],
            from_ts(r[5]),
            from_ts(r[6]),
            from_ts(r[7]),
            bool(r[8]),
            from_opt(r[9]),
            r[10],
            from_opt(r[11]),
            from_opt(r[12]),
        )


_COLUMNS = (
    "case_ref, step, round, seq, unit_code, started_at, warn_at, deadline, flagged, ended_at, status, "
    "warned_at, breached_at"
)
UPSERT = (
    f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({', '.join('?' * 13)}) "
    "ON CONFLICT (case_ref, step, round, seq) DO UPDATE SET ended_at = excluded.ended_at, "
    "status = excluded.status, warned_at = excluded.warned_at, breached_at = excluded.breached_at"
)


def steps_of(views: ViewStore, ref: str) -> list[StepRun]:
    """Every step run of a case."""
    rows = views.query(f"SELECT {_COLUMNS} FROM {TABLE} WHERE case_ref = ? ORDER BY started_at, seq", (ref,))
    return [StepRun.from_row(r) for r in rows]


def due_until(views: ViewStore, moment: datetime) -> list[tuple[str, StepRun]]:
    """``("warning" | "breach", run)`` for every running step whose warning or deadline has come by ``moment``
    and has not been recorded yet, earliest first."""
    at = ts(moment)
    rows = views.query(
        f"SELECT {_COLUMNS} FROM {TABLE} WHERE status = '{RUNNING}' AND breached_at IS NULL "
        "AND (deadline <= ? OR (warned_at IS NULL AND warn_at <= ?))",
        (at, at),
    )
    due: list[tuple[str, StepRun]] = []
    for run in map(StepRun.from_row, rows):
        if run.deadline <= moment:
            due.append(("breach", run))
        elif run.warned_at is None:
            due.append(("warning", run))
    return sorted(due, key=lambda item: item[1].deadline if item[0] == "breach" else item[1].warn_at)


def next_due(views: ViewStore) -> datetime | None:
    """The earliest warning or deadline still to be recorded, if any."""
    rows = views.query(
        f"SELECT MIN(warn_at) FROM {TABLE} WHERE status = '{RUNNING}' AND warned_at IS NULL AND breached_at IS NULL "
        f"UNION ALL SELECT MIN(deadline) FROM {TABLE} WHERE status = '{RUNNING}' AND breached_at IS NULL"
    )
    found = [from_ts(r[0]) for r in rows if r[0] is not None]
    return min(found, default=None)


def running(views: ViewStore, ref: str | None = None) -> list[StepRun]:
    """Step runs whose clock is still running (the scheduler's deadlines), optionally of one case."""
    if ref:
        # By the primary key: one case has a handful of rows (an ORDER BY deadline here would make
        # the database pick the (status, deadline) index and walk every running step instead).
        rows = views.query(f"SELECT {_COLUMNS} FROM {TABLE} WHERE case_ref = ?", (ref,))
        runs = [StepRun.from_row(r) for r in rows if r[10] == RUNNING]
        return sorted(runs, key=lambda run: run.deadline)
    rows = views.query(f"SELECT {_COLUMNS} FROM {TABLE} WHERE status = '{RUNNING}' ORDER BY deadline")
    return [StepRun.from_row(r) for r in rows]
