"""Runs projections over the log: catch up, follow live, rebuild from scratch or as of a moment.

Events are read in pages, decoded once, folded into every projection that has not yet
seen them, and each projection's rows are written with its new position in one
transaction per page. A page is large (tens of thousands of events, read a few thousand
rows at a time) so that a catch-up writes each changed row rarely; live, a page is what
arrived since the last one. The rows are read with one plain query on the event store's
own connection and decoded straight from the row (:class:`domain.transcodings.EventDecoder`).
Live, the runner waits for new events by polling (SQLite) or by PostgreSQL's
LISTEN/NOTIFY, which the event store sends on every insert.

A shardable projection (:class:`projections.base.Share`) stored in shares, as a rebuild in
shares leaves it until it merges them, is folded as its shares, each from its own position.
A runner given one ``share`` folds only that share, and its query reads only that share's
events of the projection's aggregates.
"""

from __future__ import annotations

import contextlib
import re
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
from projections.base import Context, Projection, Reader, Share, tracking_name_of
from projections.registry import Registry
from projections.store import Shape, ViewStore

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
#: A citizen reference inside a stored event's JSON (a contact's: its key is read before the rows are decoded).
_CITIZEN_REF = re.compile(rb'"citizen_ref": ?"([^"\\]+)"')
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
        share: Share | None = None,
    ) -> None:
        self.app = app
        self.views = views
        self.page = page
        self.classes = list(projection_classes)
        #: The one share of the shardable projections this runner folds (None: as stored).
        self.share = share
        self.context = Context(
            Registry(),
            policy or SlaPolicy.default(),
            WorkingCalendar(),
            load_case=lambda case_id, version: app.repository.get(case_id, version=version),
        )
        sources = {source for cls in self.classes for source in cls.sources}
        self.topics = sorted({*Registry.TOPICS, *event_topics(*sources)})
        sharded = event_topics(*{s for cls in self.classes if cls.shardable for s in cls.sources}) if share else []
        self.read, text_ids_are_uuids = _reader(app, self.topics, sharded, share)
        self.decode = EventDecoder(app.mapper, text_ids_are_uuids=text_ids_are_uuids)
        #: Reads the keys of many citizens at once (the vault's), or None.
        self.prefetch_keys: Callable[[list[str]], None] | None = getattr(app.personal, "prefetch", None)
        self.upgrade()
        self.views.create([s for cls in self.classes for s in cls.schema])
        try:
            layout = self._layout()
        except ValueError:
            # Shares of different rebuilds stored at once: catching up says so; a reset mends it.
            layout = {}
        self.projections: list[Projection] = self._lay_out(layout)
        #: Events of the registry applied (every share of a rebuild in shares reads them all).
        self.registry_events = 0
        self._registry_position = 0
        # The position each projection's in-memory state stands at (it loads lazily from its rows).
        self._in_memory: dict[str, int] = {}
        # One catch-up at a time: a process's follower, deadline keeper and requests share one runner.
        self._catching_up = threading.RLock()

    # -- the projections and their shares -------------------------------------------------------

    def _layout(self) -> dict[str, int]:
        """In how many shares each shardable projection is to be folded (0: whole)."""
        return {
            cls.name: self.share.count if self.share else self.views.share_count(tracking_name_of(cls.name))
            for cls in self.classes
            if cls.shardable
        }

    def _lay_out(self, layout: dict[str, int] | None = None) -> list[Projection]:
        """An instance of each projection, or of each of its shares (:meth:`_layout`)."""
        layout = self._layout() if layout is None else layout
        projections: list[Projection] = []
        for cls in self.classes:
            count = layout.get(cls.name, 0)
            if self.share is not None and cls.shardable:
                projections.append(cls(self.views, self.context, self.share))
            elif count:
                projections.extend(cls(self.views, self.context, Share(index, count)) for index in range(count))
            else:
                projections.append(cls(self.views, self.context))
        return projections

    def _consumers(self) -> dict[str, tuple[bool, list[tuple[Projection, Reader | None]]]]:
        """Per topic: whether the registry reads it, and which projections do (with their readers).

        Shares of a projection folded side by side here take the events of their own aggregates
        only, decoded (no reader: a reader's result may not say whose event it was).
        """
        routes: dict[str, tuple[bool, list[tuple[Projection, Reader | None]]]] = {}
        reads = [
            (p, set(event_topics(*p.sources)), {} if self._filters(p) else p.readers()) for p in self.projections
        ]
        for topic in self.topics:
            consumers = [(p, readers.get(topic)) for p, topics, readers in reads if topic in topics]
            routes[topic] = (topic in Registry.TOPICS, consumers)
        return routes

    def _filters(self, projection: Projection) -> bool:
        """Whether this runner must pick a share's events out itself (its query did not)."""
        return projection.share is not None and self.share is None

    # -- reading ----------------------------------------------------------------------------

    def head(self) -> int:
        """The last position in the log."""
        return int(self.app.recorder.max_notification_id() or 0)

    def status(self) -> list[Status]:
        """Each projection's position and lag (a projection stored in shares: its slowest share's)."""
        head = self.head()
        return [Status(cls.name, self.views.standing(tracking_name_of(cls.name)), head) for cls in self.classes]

    # -- rebuilding -------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        """Drop the projections whose stored tables are of another shape than this code's (their
        ``version``): the next catch-up rebuilds them. Returns the names of those that held rows."""
        shapes = [Shape(cls.name, tracking_name_of(cls.name), cls.version, cls.tables) for cls in self.classes]
        dropped = self.views.upgrade(shapes)
        for shape in shapes:
            if shape.name in dropped:
                log.info("projection_reshaped", projection=shape.name, version=shape.version,
                         note="tables of another shape dropped: catching up rebuilds them")
        return dropped

    def reset(self, *, shares: int = 1) -> None:
        """Drop the projections' tables and positions (the next catch-up rebuilds them).

        ``shares`` above 1 stores each shardable projection as that many shares, each at position 0,
        for as many runners (``share``) to rebuild side by side (:mod:`projections.parallel`).
        A runner of one share does not reset: the other shares' rows are in the same tables.
        """
        if self.share is not None:
            msg = "a runner of one share cannot reset the projection; reset it whole first"
            raise ValueError(msg)
        with self.views.transaction(commit=True) as cur:
            for cls in self.classes:
                self.views.drop(cur, cls.tables)
                self.views.reset_position(cur, tracking_name_of(cls.name))
                if cls.shardable and shares > 1:
                    self.views.lay_out_shares(cur, tracking_name_of(cls.name), shares)
        self.views.create([s for cls in self.classes for s in cls.schema])
        self.projections = self._lay_out()
        self._in_memory = {}
        self.context.registry = Registry()
        self.context.registry_changes += 1
        self._registry_position = 0

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

        ``as_of`` applies only the events that happened at or before that moment. Callers in
        several threads take turns (one process's follower, deadline keeper and requests share
        one runner, so that none of them folds what another just folded).
        """
        with self._catching_up:
            return self._catch_up(until_position, as_of, progress, stop)

    def _catch_up(
        self,
        until_position: int | None,
        as_of: datetime | None,
        progress: Progress | None,
        stop: threading.Event | None,
    ) -> int:
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
        """Each projection's stored position, by tracking name; a projection whose memory is not at
        that position (another runner moved the tables on) forgets and resumes from the stored rows.

        A projection stored in shares since this runner last looked (or no longer) is laid out anew.
        """
        layout = self._layout()
        if layout != {p.name: p.share.count if p.share else 0 for p in self.projections if p.shardable}:
            self.projections = self._lay_out(layout)
            self._in_memory = {}
        positions = {p.tracking_name: self.views.position(p.tracking_name) for p in self.projections}
        for projection in self.projections:
            key = projection.tracking_name
            if self._in_memory.get(key) != positions[key]:
                projection.forget()
                self._in_memory[key] = positions[key]
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
                self._prefetch(rows, routes)
                fetched += len(rows)
                applied += self._fold(rows, routes, positions, as_of)
            behind = [p for p in self.projections if last > positions[p.tracking_name]]
            # The rows are made before the transaction, which holds the store's write lock throughout.
            for projection in behind:
                projection.prepare()
            with self.views.transaction(commit=True) as cur:
                for projection in behind:
                    key = projection.tracking_name
                    projection.flush(cur)
                    self.views.record_position(cur, key, positions[key], last)
        except BaseException:
            # In-memory state may hold half a page: start again from what is stored.
            for projection in self.projections:
                projection.forget()
            self._in_memory = {}
            raise
        for projection in self.projections:
            key = projection.tracking_name
            positions[key] = max(positions[key], last)
            self._in_memory[key] = positions[key]
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
            if reads_registry:
                self.registry_events += 1
                if position > self._registry_position and registry.apply(event):
                    self._registry_position = position
                    self.context.registry_changes += 1
            for name, apply in folds:
                if position > positions[name]:
                    apply(position, event)
        return applied

    def _prefetch(self, rows: Sequence[Row], routes: dict[str, _Route]) -> None:
        """Have the citizens' keys of the contacts in these rows read in one go, before the rows are
        decoded one by one (each would otherwise read its key with a query of its own).

        Only the rows to be decoded are looked at (a reader reads no contact). Finding a reference
        here is an optimisation only: a contact whose key was not read ahead reads its own.
        """
        prefetch = self.prefetch_keys
        if prefetch is None:
            return
        decoded = {topic for topic, route in routes.items() if route[1] is None}
        find = _CITIZEN_REF.findall
        refs = [
            ref.decode("utf-8", "replace")
            for _, _, _, topic, state in rows
            if topic in decoded and b'"citizen_ref"' in state
            for ref in find(state)
        ]
        if refs:
            prefetch(refs)

    def _routes(self, *, light: bool) -> dict[str, _Route]:
        """How each topic is folded (``light``: readers allowed)."""
        routes: dict[str, _Route] = {}
        for topic, (reads_registry, consumers) in self._consumers().items():
            # Looked up now, not at construction: a test may wrap a projection's apply in between.
            folds: list[tuple[str, Fold]] = [
                (p.tracking_name, _only(p.share, p.apply) if p.share and self._filters(p) else p.apply)
                for p, _ in consumers
            ]
            readers: list[tuple[str, Fold, Reader]] = [
                (p.tracking_name, p.apply, reader) for p, reader in consumers if reader is not None
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


def _only(share: Share, apply: Fold) -> Fold:
    """``apply`` for the events of the aggregates in ``share``."""
    holds = share.holds

    def fold(position: int, event: Any) -> None:
        if holds(event.originator_id):
            apply(position, event)

    return fold


Fetch = Callable[[int, int, int], Sequence[Row]]


def _reader(
    app: PingjingApp, topics: Sequence[str], sharded: Sequence[str] = (), share: Share | None = None
) -> tuple[Fetch, bool]:
    """How to fetch the rows of ``topics`` after a position, up to another, at most so many,
    in log order; and whether the ids it gives as text are UUIDs.

    Of the ``sharded`` topics, only the events of the aggregates in ``share`` are fetched (all of
    them from a store this runner cannot query in SQL: its projections then pick theirs out).
    """
    recorder: Any = app.recorder
    if share is None:
        sharded = ()
    plain = [topic for topic in topics if topic not in sharded]
    sharded = [topic for topic in topics if topic in sharded]
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite_reader(recorder, plain, sharded, share), recorder.datastore.originator_id_type == "uuid"
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_reader(recorder, plain, sharded, share), False

    def read(after: int, stop: int, limit: int) -> list[Row]:
        notifications = recorder.select_notifications(start=after + 1, limit=limit, stop=stop, topics=topics)
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]

    if share is not None and sharded:
        msg = f"a share of a projection needs a SQL event store, not {type(recorder).__name__}"
        raise TypeError(msg)
    return read, False


def _sqlite_reader(
    recorder: SQLiteApplicationRecorder, plain: Sequence[str], sharded: Sequence[str], share: Share | None
) -> Fetch:
    """The library's query of notifications (``rowid`` is the position), with rows as plain tuples."""
    wanted = f"topic IN ({','.join('?' * len(plain))})"
    if sharded and share is not None:
        # The id is stored as text (32 hex digits, or the dashed form): its last character.
        digits = ",".join(f"'{digit}'" for digit in share.digits)
        mine = f"substr(originator_id, -1) IN ({digits})"
        wanted = f"({wanted} OR (topic IN ({','.join('?' * len(sharded))}) AND {mine}))"
    statement = (
        f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
        f"WHERE rowid > ? AND rowid <= ? AND {wanted} ORDER BY rowid LIMIT ?"
    )
    datastore = recorder.datastore
    topics = (*plain, *sharded)

    def read(after: int, stop: int, limit: int) -> list[Row]:
        with datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(statement, (after, stop, *topics, limit))
            return cursor.fetchall()

    return read


def _postgres_reader(
    recorder: PostgresApplicationRecorder, plain: Sequence[str], sharded: Sequence[str], share: Share | None
) -> Fetch:
    """The library's query of notifications, with rows as plain tuples."""
    wanted: sql.Composable = sql.SQL("topic = ANY(%s)")
    if sharded and share is not None:
        # The id's last hex digit, whether the column holds UUIDs or their text.
        mine = sql.SQL("right(originator_id::text, 1) = ANY({})").format(sql.Literal(list(share.digits)))
        wanted = sql.SQL("({} OR (topic = ANY(%s) AND {}))").format(wanted, mine)
    statement = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
        "WHERE notification_id > %s AND notification_id <= %s AND {} ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name), wanted)
    datastore = recorder.datastore
    lists = [list(plain), list(sharded)] if sharded and share is not None else [list(plain)]

    def read(after: int, stop: int, limit: int) -> list[Row]:
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, (after, stop, *lists, limit), prepare=True)
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
