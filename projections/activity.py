"""Encounters and ratings: the scan rate and the satisfaction rate, with encounter attribution.

A rating links to an encounter by its one-time code, else to the rated officer's (or
unit's) latest unrated encounter within 72 hours before the scan (DESIGN §6). The
projection keeps the last seven days of encounters in memory and in ``pj_encounters``
(nothing older can be linked) so that it can resume after a restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.encounters import Encounter
from domain.ratings import Rating
from domain.transcodings import hex_of, stored, stored_moment, stored_occurred_at, text_of_hex
from domain.values import QrSubject, Verdict
from projections.base import Context, Projection, Reader, Share
from projections.board import from_opt, from_ts, ts
from projections.counts import Counts, Metrics
from projections.store import Cursor, ViewStore

COUNTS_TABLE = "pj_activity_counts"
#: What the activity counts (one column each).
METRICS = Metrics(
    COUNTS_TABLE,
    (
        "encounters",
        "encounters_rated",
        "ratings",
        "ratings_ok",
        *(f"ratings_{verdict.value}" for verdict in Verdict),
        "ratings_verified",
        "ratings_unverified",
    ),
)
ENCOUNTERS = "pj_encounters"
ATTRIBUTION_WINDOW = timedelta(hours=72)
#: Encounters older than this behind the newest one can no longer be linked, and are dropped.
KEEP = timedelta(days=7)

SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {ENCOUNTERS} (encounter_id TEXT PRIMARY KEY, officer_id TEXT, "
    "unit_id TEXT NOT NULL, happened_at TEXT NOT NULL, rated INTEGER NOT NULL, position BIGINT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {ENCOUNTERS}_time ON {ENCOUNTERS} (happened_at)",
    *METRICS.schema(),
)
UPSERT = (
    f"INSERT INTO {ENCOUNTERS} VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (encounter_id) DO UPDATE SET rated = excluded.rated"
)

# Ids are kept as their 32 hex digits (``UUID.hex``): cheaper to read from the stored
# fields and to hash than UUID objects.


class Logged(NamedTuple):
    """What the projection reads of an ``Encounter.Logged``."""

    encounter_id: str
    officer_id: str | None
    unit_id: str
    happened_at: datetime


class Rated(NamedTuple):
    """What the projection reads of a ``Rating.Submitted``."""

    at: datetime
    unit_id: str
    officer_id: str | None
    verdict: str
    encounter_id: str | None
    target: str


_new_tuple = tuple.__new__


# The readers below are on the hot path of a rebuild: the common case costs no call but
# the few it cannot do without (the types of the stored values are still checked).


def _logged(fields: dict[str, Any], originator_id: Any) -> Logged:
    """Read from the stored fields."""
    officer, unit, happened = fields["officer_id"], fields["unit_id"], fields["happened_at"]
    if officer is not None:
        officer = officer["_data_"] if officer["_type_"] == "uuid_hex" else stored(officer, "uuid_hex")
    if type(originator_id) is str and len(originator_id) == 32 and originator_id.isalnum():
        encounter_id = originator_id.lower()
    else:
        encounter_id = hex_of(originator_id)
    return _new_tuple(
        Logged,
        (
            encounter_id,
            officer,
            unit["_data_"] if unit["_type_"] == "uuid_hex" else stored(unit, "uuid_hex"),
            stored_moment(happened),
        ),
    )


def _rated(fields: dict[str, Any], _originator_id: Any) -> Rated:
    """Read from the stored fields."""
    unit, officer, encounter = fields["unit_id"], fields["officer_id"], fields["encounter_id"]
    if officer is not None:
        officer = officer["_data_"] if officer["_type_"] == "uuid_hex" else stored(officer, "uuid_hex")
    if encounter is not None:
        encounter = encounter["_data_"] if encounter["_type_"] == "uuid_hex" else stored(encounter, "uuid_hex")
    return _new_tuple(
        Rated,
        (
            stored_occurred_at(fields),
            unit["_data_"] if unit["_type_"] == "uuid_hex" else stored(unit, "uuid_hex"),
            officer,
            fields["verdict"],
            encounter,
            fields["target"],
        ),
    )


def _opt_hex(value: UUID | None) -> str | None:
    return None if value is None else value.hex


def _logged_of(event: Any) -> Logged:
    """Read from the domain event."""
    return Logged(hex_of(event.originator_id), _opt_hex(event.officer_id), event.unit_id.hex, event.happened_at)


def _rated_of(event: Any) -> Rated:
    """Read from the domain event."""
    return Rated(
        event.meta.occurred_at,
        event.unit_id.hex,
        _opt_hex(event.officer_id),
        str(event.verdict),
        _opt_hex(event.encounter_id),
        str(event.target),
    )


@dataclass(slots=True)
class Seen:
    """An encounter the attribution may still link a rating to."""

    encounter_id: str
    officer_id: str | None
    unit_id: str
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
_ENCOUNTERS = ("encounters",)
_RATED = ("encounters_rated",)
_READERS: dict[str, Reader] = {
    get_topic(Encounter.Logged): _logged,  # type: ignore[attr-defined]
    get_topic(Rating.Submitted): _rated,  # type: ignore[attr-defined]
}


class ActivityProjection(Projection):
    """Encounter and rating counts per scope and period."""

    name = "activity"
    #: 2: counts in one row per scope and period, a column per metric (was a row per metric).
    version = 2
    schema: ClassVar[tuple[str, ...]] = SCHEMA
    tables = (ENCOUNTERS, COUNTS_TABLE)
    sources = (Encounter, Rating)

    def __init__(self, views: ViewStore, context: Context, share: Share | None = None) -> None:
        super().__init__(views, context, share)
        self.scopes: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self.scopes_of = -1  # the registry changes they were derived at
        self.forget()

    def readers(self) -> Mapping[str, Reader]:
        """Encounters and ratings are read from their stored fields."""
        return _READERS

    def forget(self) -> None:
        """Start again from what is stored."""
        self.counts = Counts(METRICS)
        self.encounters: dict[str, Seen] = {}
        self.by_officer: dict[str, list[Seen]] = {}
        self.by_unit: dict[str, list[Seen]] = {}
        # Everything remembered, in the order it was: the oldest go first.
        self.order: deque[Seen] = deque()
        self.dirty: dict[str, Seen] = {}
        #: The rows made by :meth:`prepare`, for :meth:`flush` to write.
        self.pending: tuple[list[tuple[Any, ...]], list[list[Any]], str | None] | None = None
        self.newest: datetime | None = None
        # Encounters before this can no longer be linked (KEEP behind the newest one).
        self.horizon: datetime | None = None
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
                    UUID(encounter_id).hex,
                    UUID(officer_id).hex if officer_id else None,
                    UUID(unit_id).hex,
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
        order = self.order
        order.append(seen)
        if self.newest is None or seen.happened_at > self.newest:
            self.newest = seen.happened_at
            self.horizon = horizon = seen.happened_at - KEEP
            if order[0].happened_at < horizon:
                self._prune(horizon)

    # -- folding ----------------------------------------------------------------------------

    def apply(self, position: int, event: Any) -> None:
        """Count encounters and ratings; link ratings to encounters."""
        kind = type(event)
        if kind is Logged:
            self._encounter(position, event)
        elif kind is Rated:
            self._rating(event)
        elif isinstance(event, Encounter.Logged):  # type: ignore[attr-defined]
            self._encounter(position, _logged_of(event))
        elif isinstance(event, Rating.Submitted):  # type: ignore[attr-defined]
            self._rating(_rated_of(event))

    def _encounter(self, position: int, event: Logged) -> None:
        encounter_id, officer_id, unit_id, happened_at = event
        seen = Seen(encounter_id, officer_id, unit_id, happened_at, position)
        self._remember(seen)
        self.dirty[encounter_id] = seen
        scopes = self.scopes.get((unit_id, officer_id)) if self.scopes_of == self.context.registry_changes else None
        self.counts.add_all(scopes or self._scopes(unit_id, officer_id), happened_at, _ENCOUNTERS)

    def _scopes(self, unit_id: str, officer_id: str | None) -> tuple[str, ...]:
        """Where a fact of this unit and officer counts (the registry's scopes, kept by hex ids)."""
        context = self.context
        if self.scopes_of != context.registry_changes:
            self.scopes.clear()
            self.scopes_of = context.registry_changes
        key = (unit_id, officer_id)
        known = self.scopes.get(key)
        if known is None:
            officer = UUID(hex=officer_id) if officer_id is not None else None
            known = self.scopes[key] = context.registry.scopes(UUID(hex=unit_id), officer)
        return known

    def _rating(self, event: Rated) -> None:
        at, unit_id, officer_id, verdict, encounter_id, _ = event
        scopes = self.scopes.get((unit_id, officer_id)) if self.scopes_of == self.context.registry_changes else None
        self.counts.add_all(
            scopes or self._scopes(unit_id, officer_id), at, _RATING_METRICS[(verdict, encounter_id is not None)]
        )
        linked = self._link(event, at)
        if linked is not None and not linked.rated:
            linked.rated = True
            self.dirty[linked.encounter_id] = linked
            self.counts.add_all(self._scopes(linked.unit_id, linked.officer_id), linked.happened_at, _RATED)

    def _link(self, event: Rated, at: datetime) -> Seen | None:
        # Only encounters within KEEP of the newest one count, whenever memory was last cleaned
        # up: a restart, which loads those from the table, then links exactly as a rebuild does.
        horizon = self.horizon
        if event.encounter_id is not None:
            seen = self.encounters.get(event.encounter_id)
            return seen if seen is not None and horizon is not None and seen.happened_at >= horizon else None
        if event.target == QrSubject.OFFICER:
            candidates = self.by_officer.get(event.officer_id, []) if event.officer_id is not None else []
        else:
            candidates = self.by_unit.get(event.unit_id, [])
        # The latest unrated encounter in the window; among equal times the first logged.
        # The lists hold a week or so of one officer's or unit's encounters, in log order.
        earliest = at - ATTRIBUTION_WINDOW
        if horizon is not None and horizon > earliest:
            earliest = horizon
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

    def prepare(self) -> None:
        """Make the batch's rows before the write transaction (see :meth:`Projection.prepare`)."""
        if self.pending is None:
            self.pending = self._rows()

    def flush(self, cur: Cursor) -> None:
        """Write the batch's counts and encounter rows; let go of rows that can no longer be linked."""
        encounters, counts, horizon = self.pending or self._rows()
        self.pending = None
        cur.executemany(UPSERT, encounters)
        self.counts.write(cur, counts)
        if horizon is not None:
            cur.execute(f"DELETE FROM {ENCOUNTERS} WHERE happened_at < ?", (horizon,))

    def _rows(self) -> tuple[list[tuple[Any, ...]], list[list[Any]], str | None]:
        """The batch's encounter and counts rows, and the horizon before which rows go; the batch is then forgotten."""
        horizon = self.horizon
        # The table only has to let a restart resume the attribution: older rows are not
        # written, and those written before are deleted.
        encounters = [
            (
                text_of_hex(s.encounter_id),
                text_of_hex(s.officer_id) if s.officer_id else None,
                text_of_hex(s.unit_id),
                ts(s.happened_at),
                int(s.rated),
                s.position,
            )
            for s in self.dirty.values()
            if horizon is None or s.happened_at >= horizon
        ]
        self.dirty.clear()
        return encounters, self.counts.rows(), None if horizon is None else ts(horizon)

    def _prune(self, horizon: datetime) -> None:
        """Let go of the encounters remembered first, while they are before ``horizon``.

        One logged late behind newer ones stays until they go: memory only, as ``_link``
        looks at nothing before the horizon.
        """
        order = self.order
        while order and order[0].happened_at < horizon:
            gone = order.popleft()
            if self.encounters.get(gone.encounter_id) is gone:
                del self.encounters[gone.encounter_id]
            self._drop(self.by_unit, gone.unit_id, gone)
            if gone.officer_id is not None:
                self._drop(self.by_officer, gone.officer_id, gone)

    @staticmethod
    def _drop(index: dict[str, list[Seen]], key: str, gone: Seen) -> None:
        # The lists are in the same order as ``order``: what goes is at the front.
        seen = index[key]
        if seen[0] is gone:
            del seen[0]
        else:
            seen.remove(gone)
        if not seen:
            del index[key]
