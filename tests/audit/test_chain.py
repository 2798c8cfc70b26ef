"""The chain is written with the events: one row each, same transaction, the documented formula.

Also: an older store is chained when first opened, concurrent writers keep one chain, the
views are not part of it, PostgreSQL's sequence gaps are harmless, and the walk is fast.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.audit.log import SQLiteChainLog, chain_log_of
from adapters.audit.verify import verify
from adapters.persistence import ChainError
from adapters.persistence.chain import GENESIS, chain_rows
from adapters.store import resolve
from domain import commands as c
from domain.application import PingjingApp
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from tests.audit.conftest import Raw, Story, tell
from tests.conftest import CITIZEN, County, make_app
from tests.fakes import FakeClock


def rating() -> c.SubmitRating:
    return c.SubmitRating(
        target="officer", key="100102", verdict="satisfied", service_score=5, attitude_score=5, efficiency_score=5
    )


def test_every_event_has_its_chain_row(story: Story) -> None:
    raw = Raw(story.database)
    events = [r[0] for r in raw.run("SELECT {pos} FROM {events} ORDER BY {pos}")]
    chained = [r[0] for r in raw.run("SELECT position FROM {chain} ORDER BY position")]
    assert events == chained
    assert len(events) == story.head


def test_the_chain_follows_the_documented_formula(story: Story) -> None:
    """Recomputed here from the README's formula with hashlib alone, not with the module's code."""
    raw = Raw(story.database)
    previous = bytes(32)
    for position, event_digest, chain_digest in raw.run(
        "SELECT position, event_hash, chain_hash FROM {chain} ORDER BY position LIMIT 5"
    ):
        oid, version, topic, state = raw.row(int(position))
        encoded = (
            b"pingjing-event-v1\x00"
            + struct.pack(">I", len(oid.encode())) + oid.encode()
            + struct.pack(">Q", version)
            + struct.pack(">I", len(topic.encode())) + topic.encode()
            + struct.pack(">Q", len(state)) + state
        )
        assert bytes(event_digest) == hashlib.sha256(encoded).digest()
        previous = hashlib.sha256(previous + struct.pack(">Q", int(position)) + bytes(event_digest)).digest()
        assert bytes(chain_digest) == previous


def test_a_failed_write_leaves_no_chain_row(chained: str, clock: FakeClock) -> None:
    app = make_app(chained, clock)
    try:
        County(app, clock).setup()
        head = app.recorder.max_notification_id()
        stored = app.recorder.select_notifications(start=1, limit=1)[0]
        duplicate = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, stored.state)
        with pytest.raises(IntegrityError):
            app.recorder.insert_events([duplicate])
    finally:
        app.close()
    raw = Raw(chained)
    assert raw.run("SELECT MAX(position), COUNT(*) FROM {chain}")[0] == (head, head)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_older_store_is_chained_as_found_when_first_opened(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    database = str(tmp_path / "old.sqlite3") if kind == "sqlite" else str(request.getfixturevalue("postgres_database"))
    env = dict(resolve(database).env)
    env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite" if kind == "sqlite" else "eventsourcing.postgres"
    old = PingjingApp(env=env, clock=clock)  # the library's own recorder: no chain
    County(old, clock).setup().rate()
    head = old.recorder.max_notification_id()
    old.close()
    raw = Raw(database)
    assert head

    app = make_app(database, clock)  # the chained recorder creates the chain table, with the history
    try:
        assert raw.run("SELECT COUNT(*) FROM {chain}")[0][0] == head
        County(app, clock).rate()  # and goes on from there
        result = verify(chain_log_of(app), app.mapper)
    finally:
        app.close()
    assert result.intact, result.problem
    assert result.head_position is not None
    assert result.head_position > head


def test_concurrent_writers_keep_one_chain(chained: str, clock: FakeClock) -> None:
    """Two applications (two connection pools, as two processes would have) append at once."""
    setup = make_app(chained, clock)
    County(setup, clock).setup()
    setup.close()
    apps = [make_app(chained, clock) for _ in range(2)]
    errors: list[BaseException] = []

    def write(app: PingjingApp) -> None:
        try:
            for _ in range(25):
                app.execute_batch([(rating(), CITIZEN)] * 3)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        result = verify(chain_log_of(apps[0]), apps[0].mapper)
        head = apps[0].recorder.max_notification_id()
    finally:
        for app in apps:
            app.close()
    assert result.intact, result.problem
    assert result.head_position == head
    assert result.events == Raw(chained).run("SELECT COUNT(*) FROM {events}")[0][0]


def test_the_views_are_not_part_of_the_chain(story: Story, clock: FakeClock) -> None:
    app = make_app(story.database, clock)
    try:
        views = ViewStore.beside(app)
        Runner(app, views, ALL).catch_up()  # writes the projections' tables beside the events
        result = verify(chain_log_of(app), app.mapper)
    finally:
        app.close()
    assert result.intact, result.problem
    assert result.events == story.head


def test_a_removed_head_stops_further_writes_on_sqlite(tmp_path: Path, clock: FakeClock) -> None:
    """SQLite hands a removed last row's position out again; the chain refuses to cover it up."""
    story = tell(str(tmp_path / "events.sqlite3"), clock)
    Raw(story.database).delete(story.head)
    app = make_app(story.database, clock)
    try:
        with pytest.raises(ChainError, match="already in the chain"):
            app.execute(rating(), CITIZEN)
    finally:
        app.close()
    assert Raw(story.database).head() == story.head - 1, "nothing was written"


@pytest.mark.postgres
def test_a_gap_in_the_postgres_sequence_is_harmless_and_an_event_slipped_into_it_is_caught(
    postgres_database: str, clock: FakeClock
) -> None:
    app = make_app(postgres_database, clock)
    try:
        County(app, clock).setup()
        stored = app.recorder.select_notifications(start=1, limit=1)[0]
        with pytest.raises(IntegrityError):  # the failed insert consumes a sequence number
            app.recorder.insert_events([StoredEvent(stored.originator_id, 1, stored.topic, stored.state)])
        before = app.recorder.max_notification_id() or 0
        app.execute(rating(), CITIZEN)
        result = verify(chain_log_of(app), app.mapper)
    finally:
        app.close()
    raw = Raw(postgres_database)
    positions = [r[0] for r in raw.run("SELECT {pos} FROM {events} ORDER BY {pos}")]
    gap = next(p for p in range(before + 1, positions[-1]) if p not in positions)
    assert result.intact, result.problem

    _, _, topic, state = raw.row(positions[-1])
    raw.insert(uuid.uuid4().hex, 1, topic, state, position=gap)
    app = make_app(postgres_database, clock)
    try:
        result = verify(chain_log_of(app), app.mapper)
    finally:
        app.close()
    assert result.problem is not None
    assert (result.problem.kind.value, result.problem.position) == ("inserted", gap)


def test_the_walk_is_fast(tmp_path: Path) -> None:
    """60,000 rating-sized events, chained as the recorder chains them, walked with plain SQL."""
    path = tmp_path / "big.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "PRIMARY KEY (originator_id, originator_version))"
    )
    conn.execute("CREATE TABLE stored_events_chain (position INTEGER PRIMARY KEY, event_hash BLOB, chain_hash BLOB)")
    state = b'{"meta":{"actor":"anonymous","role":"citizen"},"verdict":"satisfied","scores":[5,5,4]}' * 5
    rows = [(n, uuid.UUID(int=n).hex, 1, "domain.ratings:Rating.Submitted", state) for n in range(1, 60_001)]
    conn.executemany("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                     "VALUES (?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO stored_events_chain VALUES (?, ?, ?)", chain_rows(GENESIS, rows))
    conn.commit()
    conn.close()
    app = PingjingApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    result = verify(SQLiteChainLog(path), app.mapper)

    assert result.intact
    assert result.events == 60_000
    # 200,000 events/s and more on the development machine; loose here, a busy CI machine is slower.
    assert result.events_per_second > 40_000, f"{result.events_per_second:,.0f} events/s"
