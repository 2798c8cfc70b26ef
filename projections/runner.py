"""Runs projections over the log: catch up, follow live, rebuild from scratch or as of a moment.

Events are read in pages, decoded once, folded into every projection that has not yet
seen them, and each projection's rows are written with its new position in one
transaction per page. A page is large (tens of thousands of events, read a few thousand
rows at a time) so that a catch-up writes each changed row rarely; live, a page is what
arrived since the last one. The rows are read with one plain query on the event store's
own connection and decoded straight from the row (:class:`domain.transcodings.EventDecoder`).
Live, the runner waits for new events by polling (SQLite) or by PostgreSQL's
LISTEN/NOTIFY, which the event store sends on every insert.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog
from eventsourcing.domain import OriginatorVersionError
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql
from psycopg.rows import tuple_row

from domain.aggregate import event_topics
from domain.application import PingjingApp
from domain.sla import SlaPolicy, WorkingCalendar
from domain.transcodings import EventDecoder
from projections.base import Context, Projection, Reader
from projections.registry import Registry
from projections.store import ViewStore

#: Events applied per transaction (at most): rows and position are written once per page.
PAGE = 50_000
#: Rows fetched per query.
READ = 2000
POLL_SECONDS = 0.5
#: How long a follower waits before trying an unreachable store again, after each failure in a row.
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
#: What an unreachable, full or read-only store raises.
STORE_ERRORS = (PersistenceError, sqlite3.Error, psycopg.Error, OSError)

log = structlog.get_logger("pingjing.projections")

Progress = Callable[[int, int], None]
#: A stored event as the query gives it: position, originator id, version, topic, state.
Row = tuple[int, Any, int, str, bytes]
Fold = Callable[[int, Any], None]
#: How a topic is folded: whether the registry reads it; the projections that read it with their
#: readers, when all of them have one (else None: decode the event); those projections' folds.
_Route = tuple[bool, list[tuple[str, Fold, Reader]] | None, list[tuple[str, Fold]]]


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
        self.read, text_ids_are_uuids = _reader(app, self.topics)
        self.decode = EventDecoder(app.mapper, text_ids_are_uuids=text_ids_are_uuids)
        # Per topic: whether the registry reads it, and which projections do (with their readers).
        self.routes: dict[str, tuple[bool, list[tuple[Projection, Reader | None]]]] = {}
        reads = [(p, set(event_topics(*p.sources)), p.readers()) for p in self.projections]
        for topic in self.topics:
            consumers = [(p, readers.get(topic)) for p, topics, readers in reads if topic in topics]
            self.routes[topic] = (topic in Registry.TOPICS, consumers)
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
        self.context.registry_changes += 1
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
        while start < head and not (stop and stop.is_set()):
            try:
                last, count = self._apply_page(start, head, positions, as_of, stop)
            except (IntegrityError, OriginatorVersionError):
                # Another runner stored this page first (its position moved on, or its rows are
                # ahead of our memory): start again from what is stored, so nothing counts twice.
                positions = self._stored_positions()
                start = min(positions.values(), default=head)
                continue
            applied += count
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
        self,
        start: int,
        head: int,
        positions: dict[str, int],
        as_of: datetime | None,
        stop: threading.Event | None = None,
    ) -> tuple[int, int]:
        """Fold up to a page of the events after ``start``, then store every projection's rows and
        new position in one transaction; returns the position reached and the events applied.

        ``stop`` ends the page early (what was folded is stored): a page is long to fold.
        """
        routes = self._routes(light=as_of is None)
        applied = fetched = 0
        last = start
        try:
            while fetched < self.page and last < head and not (fetched and stop and stop.is_set()):
                # Only the events some projection reads are fetched and decoded.
                limit = min(READ, self.page - fetched)
                rows = self.read(last, head, limit)
                last = rows[-1][0] if len(rows) == limit else head
                fetched += len(rows)
                applied += self._fold(rows, routes, positions, as_of)
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
        return last, applied

    def _fold(
        self, rows: Sequence[Row], routes: dict[str, _Route], positions: dict[str, int], as_of: datetime | None
    ) -> int:
        """Fold rows into the registry and the projections that have not seen them; returns how many."""
        registry = self.context.registry
        decode, fields_of = self.decode, self.decode.fields
        applied = 0
        for position, originator_id, version, topic, state in rows:
            reads_registry, readers, folds = routes[topic]
            if readers is not None and (fields := fields_of(topic, state)) is not None:
                applied += 1
                for name, apply, reader in readers:
                    if position > positions[name]:
                        apply(position, reader(fields, originator_id))
                continue
            event = decode(topic, originator_id, version, state)
            if as_of is not None and event.meta.occurred_at > as_of:
                continue
            applied += 1
            if reads_registry and position > self._registry_position and registry.apply(event):
                self._registry_position = position
                self.context.registry_changes += 1
            for name, apply in folds:
                if position > positions[name]:
                    apply(position, event)
        return applied

    def _routes(self, *, light: bool) -> dict[str, _Route]:
        """How each topic is folded (``light``: readers allowed)."""
        routes: dict[str, _Route] = {}
        for topic, (reads_registry, consumers) in self.routes.items():
            # Looked up now, not at construction: a test may wrap a projection's apply in between.
            folds: list[tuple[str, Fold]] = [(p.name, p.apply) for p, _ in consumers]
            readers: list[tuple[str, Fold, Reader]] = [
                (p.name, p.apply, reader) for p, reader in consumers if reader is not None
            ]
            light_topic = light and not reads_registry and len(readers) == len(folds)
            routes[topic] = (reads_registry, readers if light_topic else None, folds)
        return routes

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
                if self.context.registry.apply(self.app.mapper.to_domain_event(n)):
                    self.context.registry_changes += 1
            if len(page) < self.page:
                break
            start = page[-1].id + 1
        self._registry_position = position

    # -- following --------------------------------------------------------------------------

    def run_forever(
        self, stop: threading.Event, *, poll: float = POLL_SECONDS, on_batch: Progress | None = None
    ) -> None:
        """Catch up, then follow the log until ``stop`` is set.

        The store going away (PostgreSQL restarted, a disk full) does not end the follower: it
        waits a little longer each time (up to :data:`RETRY_SECONDS`' last) and tries again; a
        failed page left nothing behind (:meth:`_apply_page`), so it resumes from the stored
        positions. On PostgreSQL the LISTEN connection is opened again after such a failure.
        """
        waiter: _NotifyWaiter | None = None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if waiter is None and self._listens():
                        waiter = _NotifyWaiter(self.app)
                    if self.catch_up(stop=stop, progress=on_batch) == 0:
                        if waiter is not None:
                            waiter.wait(poll)
                        else:
                            stop.wait(poll)
                    failures = 0
                except STORE_ERRORS as error:
                    delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                    failures += 1
                    log.warning("projections_store_unreachable", error=type(error).__name__, detail=str(error)[:200],
                                retry_in=delay, failures=failures)
                    if waiter is not None:
                        waiter.close()
                        waiter = None
                    stop.wait(delay)
        finally:
            if waiter is not None:
                waiter.close()

    def _listens(self) -> bool:
        """Whether new events are announced by NOTIFY (the views and the events both on PostgreSQL)."""
        return self.views.dialect == "postgres" and _is_postgres(self.app)


Fetch = Callable[[int, int, int], Sequence[Row]]


def _reader(app: PingjingApp, topics: Sequence[str]) -> tuple[Fetch, bool]:
    """How to fetch the rows of ``topics`` after a position, up to another, at most so many,
    in log order; and whether the ids it gives as text are UUIDs."""
    recorder: Any = app.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite_reader(recorder, topics), recorder.datastore.originator_id_type == "uuid"
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_reader(recorder, topics), False

    def read(after: int, stop: int, limit: int) -> list[Row]:
        notifications = recorder.select_notifications(start=after + 1, limit=limit, stop=stop, topics=topics)
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]

    return read, False


def _sqlite_reader(recorder: SQLiteApplicationRecorder, topics: Sequence[str]) -> Fetch:
    """The library's query of notifications (``rowid`` is the position), with rows as plain tuples."""
    statement = (
        f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
        f"WHERE rowid > ? AND rowid <= ? AND topic IN ({','.join('?' * len(topics))}) ORDER BY rowid LIMIT ?"
    )
    datastore = recorder.datastore

    def read(after: int, stop: int, limit: int) -> list[Row]:
        with datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(statement, (after, stop, *topics, limit))
            return cursor.fetchall()

    return read


def _postgres_reader(recorder: PostgresApplicationRecorder, topics: Sequence[str]) -> Fetch:
    """The library's query of notifications, with rows as plain tuples."""
    statement = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
        "WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name))
    datastore = recorder.datastore
    wanted = list(topics)

    def read(after: int, stop: int, limit: int) -> list[Row]:
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, (after, stop, wanted, limit), prepare=True)
            return cursor.fetchall()

    return read


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
        """Stop listening (a connection already broken is simply dropped)."""
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
