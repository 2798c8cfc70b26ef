"""The ingest benchmark's writer processes: every rating they were given is stored once, and counted."""

from __future__ import annotations

from pathlib import Path

from adapters.store import resolve
from bench import ingest
from domain.application import PingjingApp


def test_writer_processes_store_every_rating_once(tmp_path: Path) -> None:
    database = str(tmp_path / "events.sqlite3")
    app = PingjingApp(env=resolve(database).env, observers=[])
    try:
        ingest.register_county(app)
        before = app.recorder.max_notification_id() or 0
        measured = ingest.grouped_in_processes(app, database, 600, processes=2)
        stored = app.recorder.select_notifications(start=before + 1, limit=10_000)
    finally:
        app.close()
    ratings = [n for n in stored if n.topic.endswith("Rating.Submitted")]
    assert measured.commands == 600
    assert len(ratings) == 600
    assert len({n.originator_id for n in ratings}) == 600
    assert measured.events == len(stored)
    assert measured.seconds > 0
