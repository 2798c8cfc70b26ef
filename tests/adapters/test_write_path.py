"""The write path's shortcuts store exactly what the library's own paths would.

A batch of events is inserted with one statement (SQLite: ``executemany`` and the positions
worked out from the last one; PostgreSQL: one array per column, sent in binary), where the
library inserts row by row or as an array of a composite type written as text.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from adapters.store import resolve
from domain.application import PingjingApp
from tests.audit.conftest import Raw


def _events(n: int, *, first_version: int = 1) -> list[StoredEvent]:
    return [
        StoredEvent(uuid.uuid4(), first_version, "tests.write_path:Probe", f'{{"n":{i}}}'.encode()) for i in range(n)
    ]


def _app(database: str) -> PingjingApp:
    return PingjingApp(env=resolve(database).env, observers=[])


def test_a_batch_is_stored_at_the_positions_the_recorder_returns(durable_database: str) -> None:
    app = _app(durable_database)
    try:
        before = app.recorder.max_notification_id() or 0
        batches = [_events(1), _events(7), _events(250), _events(2)]
        returned = [app.recorder.insert_events(batch) for batch in batches]
        stored = app.recorder.select_notifications(start=before + 1, limit=1000)
    finally:
        app.close()
    sent = [e for batch in batches for e in batch]
    positions = [p for batch in returned for p in (batch or [])]
    assert positions == [n.id for n in stored], "every event at the position returned for it"
    assert positions == sorted(positions)
    assert len(set(positions)) == len(sent)
    for event, notification in zip(sent, stored, strict=True):
        assert (notification.originator_id, notification.originator_version, notification.topic) == (
            event.originator_id, event.originator_version, event.topic,
        )
        assert bytes(notification.state) == event.state
    raw = Raw(durable_database)
    chained = [int(r[0]) for r in raw.run("SELECT position FROM {chain} ORDER BY position")]
    assert chained[-len(positions):] == positions, "one chain row per event, at its position"


def test_a_batch_that_clashes_is_refused_whole(durable_database: str) -> None:
    app = _app(durable_database)
    try:
        first = _events(3)
        app.recorder.insert_events(first)
        before = app.recorder.max_notification_id()
        clash = [*_events(4), StoredEvent(first[1].originator_id, 1, "tests.write_path:Probe", b"{}")]
        with pytest.raises(Exception, match=r"(?i)unique|duplicate|integrity"):
            app.recorder.insert_events(clash)
        assert app.recorder.max_notification_id() == before, "nothing of the batch was stored"
    finally:
        app.close()


def test_sqlite_refuses_a_batch_whose_positions_would_not_be_consecutive(tmp_path: Path) -> None:
    """When the largest position is taken, SQLite picks new positions at random: the batch fails whole."""
    path = tmp_path / "events.sqlite3"
    app = _app(str(path))
    try:
        app.recorder.insert_events(_events(2))
        conn = sqlite3.connect(path)
        conn.execute(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
            "VALUES (9223372036854775807, 'last', 1, 'tests.write_path:Probe', x'7b7d')"
        )
        conn.commit()
        count = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
        with pytest.raises(OperationalError, match="not consecutive"):
            app.recorder.insert_events(_events(5))
        assert conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0] == count, "nothing stored"
        conn.close()
    finally:
        app.close()
