"""Stores with a short history, and a tamperer's hands: raw SQL on the SQLite file or the PostgreSQL tables.

The tamperer works below the application, as someone with the database file or a
database login would: no recorder, no chain, just rows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.audit.seals import Seal, seal
from adapters.persistence.chain import GENESIS, chain_rows
from adapters.store import connect_postgres, resolve
from tests.conftest import SUPERVISOR, County, make_app
from tests.fakes import FakeClock


@pytest.fixture
def chained(durable_database: str) -> str:
    """PINGJING_DATABASE of each store that keeps a chain: a SQLite file, a fresh PostgreSQL schema."""
    return durable_database


@dataclass
class Story:
    """A store with a history: the county, five ratings (two open cases), a seal, three more ratings."""

    database: str
    seal: Seal
    head: int


def tell(database: str, clock: FakeClock) -> Story:
    """Write the story into ``database`` and close the application."""
    app = make_app(database, clock)
    try:
        county = County(app, clock).setup()
        for verdict in ("satisfied", "dissatisfied", "satisfied", "dissatisfied", "satisfied"):
            clock.advance(minutes=10)
            county.rate(verdict)
        clock.advance(hours=1)
        sealed = seal(app, SUPERVISOR)
        assert sealed is not None
        for verdict in ("satisfied", "dissatisfied", "satisfied"):
            clock.advance(minutes=10)
            county.rate(verdict)
        return Story(database, sealed, app.recorder.max_notification_id() or 0)
    finally:
        app.close()


@pytest.fixture
def story(chained: str, clock: FakeClock) -> Story:
    """The story in each chained store."""
    return tell(chained, clock)


class Raw:
    """Rows of a store, read and written with plain SQL (positions are ``rowid`` or ``notification_id``)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.postgres = database.startswith("postgresql")
        if self.postgres:
            env = resolve(database).env
            self.env = env
            schema = env["POSTGRES_SCHEMA"]
            self.events = f"{schema}.pingjing_events"
            self.chain = f"{schema}.pingjing_events_chain"
            self.pos = "notification_id"
        else:
            self.events, self.chain, self.pos = "stored_events", "stored_events_chain", "rowid"

    def run(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement, committed; ``?`` placeholders, ``{events}``, ``{chain}``, ``{pos}`` filled in."""
        text = statement.format(events=self.events, chain=self.chain, pos=self.pos)
        if self.postgres:
            with connect_postgres(self.env) as conn:
                cursor = conn.execute(text.replace("?", "%s"), params)  # type: ignore[arg-type]
                return list(cursor.fetchall()) if cursor.description else []
        conn = sqlite3.connect(self.database)
        try:
            with conn:
                return conn.execute(text, params).fetchall()
        finally:
            conn.close()

    # -- reading ---------------------------------------------------------------------------------------

    def row(self, position: int) -> tuple[str, int, str, bytes]:
        """Originator id (as hashed), version, topic and state at a position."""
        [(oid, version, topic, state)] = self.run(
            "SELECT originator_id, originator_version, topic, state FROM {events} WHERE {pos} = ?", (position,)
        )
        return (oid if isinstance(oid, str) else oid.hex), version, topic, bytes(state)

    def position_of(self, topic: str, nth: int = 0) -> int:
        """The position of the ``nth`` event of a type."""
        rows = self.run("SELECT {pos} FROM {events} WHERE topic = ? ORDER BY {pos}", (topic,))
        return int(rows[nth][0])

    def head(self) -> int:
        """The last position."""
        return int(self.run("SELECT MAX({pos}) FROM {events}")[0][0])

    # -- the tamperer ----------------------------------------------------------------------------------

    def set_state(self, position: int, state: bytes) -> None:
        """Rewrite one event's stored state."""
        self.run("UPDATE {events} SET state = ? WHERE {pos} = ?", (state, position))

    def delete(self, position: int) -> None:
        """Remove one event."""
        self.run("DELETE FROM {events} WHERE {pos} = ?", (position,))

    def insert(self, originator_id: str, version: int, topic: str, state: bytes, position: int | None = None) -> int:
        """Add an event (at the end, or at an explicit free position); returns its position."""
        oid: Any = originator_id
        if position is None:
            self.run(
                "INSERT INTO {events} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
                (oid, version, topic, state),
            )
        else:
            self.run(
                "INSERT INTO {events} (originator_id, originator_version, topic, state, {pos}) VALUES (?, ?, ?, ?, ?)",
                (oid, version, topic, state, position),
            )
        return int(self.run("SELECT {pos} FROM {events} WHERE originator_id = ? AND originator_version = ?",
                            (oid, version))[0][0])

    def swap(self, a: int, b: int) -> None:
        """Exchange the positions of two events."""
        self.run("UPDATE {events} SET {pos} = -1 WHERE {pos} = ?", (a,))
        self.run("UPDATE {events} SET {pos} = ? WHERE {pos} = ?", (a, b))
        self.run("UPDATE {events} SET {pos} = ? WHERE {pos} = -1", (b,))

    def set_chain(self, position: int, column: str, value: bytes) -> None:
        """Overwrite one column of one chain row."""
        self.run(f"UPDATE {{chain}} SET {column} = ? WHERE position = ?", (value, position))  # noqa: S608

    def delete_chain(self, position: int) -> None:
        """Remove one chain row."""
        self.run("DELETE FROM {chain} WHERE position = ?", (position,))

    def rechain(self) -> None:
        """What a thorough tamperer does after rewriting rows: compute the whole chain table again."""
        rows = self.run("SELECT {pos}, originator_id, originator_version, topic, state FROM {events} ORDER BY {pos}")
        events = [
            (int(p), o if isinstance(o, str) else o.hex, int(v), str(t), bytes(s)) for p, o, v, t, s in rows
        ]
        self.run("DELETE FROM {chain}")
        for position, event_digest, chain_digest in chain_rows(GENESIS, events):
            self.run("INSERT INTO {chain} (position, event_hash, chain_hash) VALUES (?, ?, ?)",
                     (position, event_digest, chain_digest))


@pytest.fixture
def raw(story: Story) -> Raw:
    """The tamperer's hands on the story's store."""
    return Raw(story.database)

