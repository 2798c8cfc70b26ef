"""What keeps a rebuild's writes cheap: the large views kept in their primary key's B-tree on SQLite, times
written once not remembered."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from domain.ids import LOCAL_TZ
from projections import ALL, board, timeline
from projections.activity import COUNTS_TABLE as ACTIVITY_COUNTS
from projections.cases import COUNTS_TABLE as CASE_COUNTS
from projections.ledger import StepRun
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.projections.test_runner import tell_a_story


@pytest.mark.parametrize("table", [timeline.TABLE, CASE_COUNTS, ACTIVITY_COUNTS])
def test_the_largest_views_have_no_rowid_on_sqlite(
    tmp_path: Path, clock: FakeClock, table: str
) -> None:
    database = tmp_path / "events.sqlite3"
    app = make_app(str(database), clock)
    try:
        county = County(app, clock).setup()
        tell_a_story(county)
        views = ViewStore.beside(app)
        Runner(app, views, ALL).catch_up()
        assert views.query(f"SELECT COUNT(*) FROM {table}")[0][0] > 0  # noqa: S608 - module constants
    finally:
        app.close()
    with sqlite3.connect(database) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        assert sql.rstrip().endswith("WITHOUT ROWID")
        with pytest.raises(sqlite3.OperationalError, match="rowid"):
            conn.execute(f"SELECT rowid FROM {table}")  # noqa: S608


def test_a_step_runs_times_are_written_without_filling_the_remembered_texts() -> None:
    # A run's times are written once (and kept on the run): remembering them would only push out
    # the texts that are written again (opening times, on every board row of a case).
    start = datetime(2021, 11, 1, 9, 0, 0, 123, tzinfo=LOCAL_TZ)
    run = StepRun("PJ-1", "contact", 1, 1, "PS1", start, start + timedelta(hours=6), start + timedelta(hours=24), False)
    run.ended_at = start + timedelta(hours=3)
    run.warned_at = start + timedelta(hours=2)
    run.breached_at = start + timedelta(hours=25)
    looked_up = board._remembered_utc_text.cache_info
    before = looked_up().hits + looked_up().misses
    values = run.values()
    assert looked_up().hits + looked_up().misses == before
    assert values[5:8] == tuple(board.ts(m) for m in (start, run.warn_at, run.deadline))
    ended, warned, breached = (board.ts(m) for m in (run.ended_at, run.warned_at, run.breached_at))
    assert (values[9], values[11], values[12]) == (ended, warned, breached)
