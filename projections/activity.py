"""Encounters and ratings: the scan rate and the satisfaction rate, with encounter attribution.

A rating links to an encounter by its one-time code, else to the rated officer's (or
unit's) latest unrated encounter within 72 hours before the scan (DESIGN §6). The
projection keeps the last seven days of encounters in memory and in ``pj_encounters``
(nothing older can be linked) so that it can resume after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from domain.encounters import Encounter
from domain.ratings import Rating
from domain.values import QrSubject, Verdict
from projections.base import Context, Projection
from projections.board import from_opt, from_ts, ts
from projections.counts import Counts
from projections.counts import schema as counts_schema
from projections.store import Cursor, ViewStore

COUNTS_TABLE = "pj_activity_counts"
ENCOUNTERS = "pj_encounters"
ATTRIBUTION_WINDOW = timedelta(hours=72)
#: Encounters older than this behind the newest one are dropped from memory.
KEEP = timedelta(days=7)

SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {ENCOUNTERS} (encounter_id TEXT PRIMARY KEY, officer_id TEXT, "
    "unit_id TEXT NOT NULL, happened_at TEXT NOT NULL, rated INTEGER NOT NULL, position BIGINT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {ENCOUNTERS}_time ON {ENCOUNTERS} (happened_at)",
    *counts_schema(COUNTS_TABLE),
)
UPSERT = (
    f"INSERT INTO {ENCOUNTERS} VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (encounter_id) DO UPDATE SET rated = excluded.rated"
)


@dataclass
class Seen:
    """An encounter the attribution may still link a rating to."""

    encounter_id: UUID
    officer_id: UUID | None
    unit_id: UUID
    happened_at: datetime
    position: int
    rated: bool = False


def _rating_metrics(verdict: Verdict, verified: bool) -> tuple[str, ...]:
    ok = ("ratings_ok",) if verdict is not Verdict.DISSATISFIED else ()
    return ("ratings", f"ratings_{verdict.value}", *ok, "ratings_verified" if verified else "ratings_unverified")


#: What a rating counts, by (verdict, verified by a one-time code).
_RATING_METRICS = {
    (verdict.value, verified): _rating_metrics(verdict, verified) for verdict in Verdict for verified in (False, True)
}


class ActivityProjection(Projection):
    """Encounter and rating counts per scope and period."""

    name = "activity"
    schema: ClassVar[tuple[str, ...]] = SCHEMA
    tables = (ENCOUNTERS, COUNTS_TABLE)
    sources = (Encounter, Rating)

    def __init__(self, views: ViewStore, context: Context) -> None:
        super().__init__(views, context)
        self.forget()

    def forget(self) -> None:
        """Start again from what is stored."""
        self.counts = Counts(COUNTS_TABLE)
        self.encounters: dict[UUID, Seen] = {}
        self.by_officer: dict[UUID, list[Seen]] = {}
        self.by_unit: dict[UUID, list[Seen]] = {}
        self.dirty: dict[UUID, Seen] = {}
        self.newest: datetime | None = None
        if self.views.position(self.tracking_name):
            self._load_recent()

    def _load_recent(self) -> None:
        rows = self.views.query(f"SELECT MAX(happened_at) FROM {ENCOUNTERS}")
        newest = from_opt(rows[0][0]) if rows else None
        if newest is None:
            return
        since = ts(newest - KEEP)
        # In log order among equal times, as live: the attribution breaks ties by that order.
        for encounter_id, officer_id, unit_id, happened_at, rated, position in self.views.query(
            f"SELECT encounter_id, officer_id, unit_id, happened_at, rated, position FROM {ENCOUNTERS} "
            "WHERE happened_at >= ? ORDER BY happened_at, position",
            (since,),
        ):
            self._remember(
                Seen(
                    UUID(encounter_id),
                    UUID(officer_id) if officer_id else None,
                    UUID(unit_id),
                    from_ts(happened_at),
                    int(position),
                    bool(rated),
                )
            )

    def _remember(self, seen: Seen) -> None:
        self.encounters[seen.encounter_id] = seen
        if seen.officer_id is not None:
            self.by_officer.setdefault(seen.officer_id, []).append(seen)
        self.by_unit.setdefault(seen.unit_id, []).append(seen)
        if self.newest is None or seen.happened_at > self.newest:
            self.newest = seen.happened_at

    # -- folding ----------------------------------------------------------------------------

    def apply(self, position: int, event: Any) -> None:
        """Count encounters and ratings; link ratings to encounters."""
        if isinstance(event, Encounter.Event):
            self._encounter(position, event)
        elif isinstance(event, Rating.Event):
            self._rating(event)

    def _encounter(self, position: int, event: Any) -> None:
        seen = Seen(event.originator_id, event.officer_id, event.unit_id, event.happened_at, position)
        self._remember(seen)
        self.dirty[seen.encounter_id] = seen
        self.counts.add(self._scopes(seen), seen.happened_at, "encounters")

    def _scopes(self, seen: Seen) -> tuple[str, ...]:
        return self.context.registry.scopes(seen.unit_id, seen.officer_id)

    def _rating(self, event: Any) -> None:
        at: datetime = event.meta.occurred_at
        scopes = self.context.registry.scopes(event.unit_id, event.officer_id)
        self.counts.add(scopes, at, *_RATING_METRICS[(event.verdict, event.encounter_id is not None)])
        linked = self._link(event, at)
        if linked is not None and not linked.rated:
            linked.rated = True
            self.dirty[linked.encounter_id] = linked
            self.counts.add(self._scopes(linked), linked.happened_at, "encounters_rated")

    def _link(self, event: Any, at: datetime) -> Seen | None:
        if event.encounter_id is not None:
            return self.encounters.get(event.encounter_id)
        if QrSubject(event.target) is QrSubject.OFFICER:
            candidates = self.by_officer.get(event.officer_id, [])
        else:
            candidates = self.by_unit.get(event.unit_id, [])
        # The latest unrated encounter in the window; among equal times the first logged.
        # The lists hold a week of one officer's or unit's encounters, in log order.
        earliest = at - ATTRIBUTION_WINDOW
        best = None
        for seen in candidates:
            if (
                not seen.rated
                and earliest <= seen.happened_at <= at
                and (best is None or seen.happened_at > best.happened_at)
            ):
                best = seen
        return best

    # -- writing ----------------------------------------------------------------------------

    def flush(self, cur: Cursor) -> None:
        """Write the batch's counts and encounter rows; let go of old encounters."""
        cur.executemany(
            UPSERT,
            [
                (
                    str(s.encounter_id),
                    str(s.officer_id) if s.officer_id else None,
                    str(s.unit_id),
                    ts(s.happened_at),
                    int(s.rated),
                    s.position,
                )
                for s in self.dirty.values()
            ],
        )
        self.counts.flush(cur)
        self.dirty.clear()
        if self.newest is not None:
            # The table only has to let a restart resume the attribution: older rows can go.
            cur.execute(f"DELETE FROM {ENCOUNTERS} WHERE happened_at < ?", (ts(self.newest - KEEP),))
        self._prune()

    def _prune(self) -> None:
        if self.newest is None:
            return
        horizon = self.newest - KEEP
        if all(s.happened_at >= horizon for s in list(self.encounters.values())[:64]):
            return
        self.encounters = {k: s for k, s in self.encounters.items() if s.happened_at >= horizon}
        for index in (self.by_officer, self.by_unit):
            for key in list(index):
                kept = [s for s in index[key] if s.happened_at >= horizon]
                if kept:
                    index[key] = kept
                else:
                    del index[key]
