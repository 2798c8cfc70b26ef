"""Runs projections over the log: catch up, follow live, rebuild from scratch or as of a moment.

Events are read in pages, decoded once, folded into every projection that has not yet
seen them, and each projection's rows are written with its new position in one
transaction per page. Live, the runner waits for new events by polling (SQLite) or by
PostgreSQL's LISTEN/NOTIFY, which the event store sends on every insert.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from eventsourcing.domain import OriginatorVersionError
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from domain.aggregate import event_topics
from domain.application import PingjingApp
from domain.sla import SlaPolicy, WorkingCalendar
from projections.base import Context, Projection
from projections.registry import Registry
from projections.store import ViewStore

PAGE = 2000
POLL_SECONDS = 0.5

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Status:
    """Where a projection stands."""

    name: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        """Events not yet applied."""
        return max(self.head - self.position, 0)


class Runner:
    """Feeds projections from an application's event log into a view store."""

    def __init__(
        self,
        app: PingjingApp,
        views: ViewStore,
        projection_classes: Sequence[type[Projection]],
        *,
        policy: SlaPolicy | None = None,
        page: int = PAGE,
    ) -> None:
        self.app = app
        self.views = views
        self.page = page
        self.context = Context(
            Registry(),
            policy or SlaPolicy.default(),
            WorkingCalendar(),
            load_case=lambda case_id, version: app.repository.get(case_id, version=version),
        )
        self.projections = [cls(views, self.context) for cls in projection_classes]
        sources = {source for p in self.projections for source in p.sources}
        self.topics = sorted({*Registry.TOPICS, *event_topics(*sources)})
        self.views.create([s for p in self.projections for s in p.schema])
        self._registry_position = 0
        # The position each projection's in-memory state stands at (it loads lazily from its rows).
        self._in_memory: dict[str, int] = {}

    # -- reading ----------------------------------------------------------------------------

    def head(self) -> int:
        """The last position in the log."""
        return int(self.app.recorder.max_notification_id() or 0)

    def status(self) -> list[Status]:
        """Each projection's position and lag."""
        head = self.head()
        return [Status(p.name, self.views.position(p.tracking_name), head) for p in self.projections]

    # -- rebuilding -------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the projections' tables and positions (the next catch-up rebuilds them)."""
        with self.views.transaction(commit=True) as cur:
            for projection in self.projections:
                for table in projection.tables:
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
                self.views.reset_position(cur, projection.tracking_name)
        for projection in self.projections:
            projection.forget()
        self._in_memory = {}
        self.context.registry = Registry()
        self._registry_position = 0
        self.views.create([s for p in self.projections for s in p.schema])

    # -- applying ---------------------------------------------------------------------------

    def catch_up(
        self,
        *,
        until_position: int | None = None,
        as_of: datetime | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Apply every event up to ``until_position`` (default: the head); returns the events applied.

        ``as_of`` applies only the events that happened at or before that moment.
        """
        head = self.head() if until_position is None else min(until_position, self.head())
        positions = self._stored_positions()
        start = min(positions.values(), default=head)
        self._load_registry(start)
        applied = 0
        decode = self.app.mapper.to_domain_event
        while start < head and not (stop and stop.is_set()):
            # Only the events some projection reads are fetched and decoded.
            notifications = self.app.recorder.select_notifications(
                start=start + 1, limit=self.page, stop=head, topics=self.topics
            )
            last = notifications[-1].id if len(notifications) == self.page else head
            events: list[tuple[int, Any]] = [(n.id, decode(n)) for n in notifications]
            try:
                applied += self._apply_page(events, last, positions, as_of)
            except (IntegrityError, OriginatorVersionError):
                # Another runner stored this page first (its position moved on, or its rows are
                # ahead of our memory): start again from what is stored, so nothing counts twice.
                positions = self._stored_positions()
                start = min(positions.values(), default=head)
                continue
            start = last
            if progress:
                progress(start, head)
        return applied

    def _stored_positions(self) -> dict[str, int]:
        """Each projection's stored position; a projection whose memory is not at that position
        (another runner moved the tables on) forgets and resumes from the stored rows."""
        positions = {p.name: self.views.position(p.tracking_name) for p in self.projections}
        for projection in self.projections:
            if self._in_memory.get(projection.name) != positions[projection.name]:
                projection.forget()
                self._in_memory[projection.name] = positions[projection.name]
        return positions

    def _apply_page(
        self, events: list[tuple[int, Any]], last: int, positions: dict[str, int], as_of: datetime | None
    ) -> int:
        registry = self.context.registry
        applied = 0
        try:
            for position, event in events:
                if as_of is not None and event.meta.occurred_at > as_of:
                    continue
                applied += 1
                if position > self._registry_position and registry.apply(event):
                    self._registry_position = position
                for projection in self.projections:
                    if position > positions[projection.name]:
                        projection.apply(position, event)
            with self.views.transaction(commit=True) as cur:
                for projection in self.projections:
                    if last > positions[projection.name]:
                        projection.flush(cur)
                        self.views.record_position(cur, projection.tracking_name, positions[projection.name], last)
        except BaseException:
            # In-memory state may hold half a page: start again from what is stored.
            for projection in self.projections:
                projection.forget()
            self._in_memory = {}
            raise
        for projection in self.projections:
            positions[projection.name] = max(positions[projection.name], last)
            self._in_memory[projection.name] = positions[projection.name]
        self._registry_position = max(self._registry_position, last)
        return applied

    def _load_registry(self, position: int) -> None:
        """The registry as it stood at ``position`` (units and officers change rarely: one filtered read)."""
        if self._registry_position >= position:
            return
        start = self._registry_position + 1
        while start <= position:
            page = self.app.recorder.select_notifications(
                start=start, limit=self.page, stop=position, topics=Registry.TOPICS
            )
            for n in page:
                self.context.registry.apply(self.app.mapper.to_domain_event(n))
            if len(page) < self.page:
                break
            start = page[-1].id + 1
        self._registry_position = position

    # -- following --------------------------------------------------------------------------

    def run_forever(
        self, stop: threading.Event, *, poll: float = POLL_SECONDS, on_batch: Progress | None = None
    ) -> None:
        """Catch up, then follow the log until ``stop`` is set."""
        waiter = _NotifyWaiter(self.app) if self.views.dialect == "postgres" and _is_postgres(self.app) else None
        try:
            while not stop.is_set():
                if self.catch_up(stop=stop, progress=on_batch) == 0:
                    if waiter is not None:
                        waiter.wait(poll)
                    else:
                        stop.wait(poll)
        finally:
            if waiter is not None:
                waiter.close()


def _is_postgres(app: PingjingApp) -> bool:
    return hasattr(app.recorder, "channel_name")


class _NotifyWaiter:
    """Waits for the event store's NOTIFY on a connection of its own."""

    def __init__(self, app: PingjingApp) -> None:
        recorder: Any = app.recorder
        datastore = recorder.datastore
        kwargs = datastore.pool.kwargs
        self.conn = psycopg.connect(
            dbname=kwargs["dbname"],
            host=kwargs["host"],
            port=kwargs["port"],
            user=kwargs["user"],
            password=kwargs["password"] or None,
            autocommit=True,
        )
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))

    def wait(self, timeout: float) -> None:
        """Return at the next notification, or after ``timeout`` seconds."""
        for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            break

    def close(self) -> None:
        """Stop listening."""
        self.conn.close()
