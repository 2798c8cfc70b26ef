"""What keeps a rebuild's writes cheap: the large views kept in their primary key's B-tree on SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from projections import ALL, timeline
from projections.activity import COUNTS_TABLE as ACTIVITY_COUNTS
from projections.cases import COUNTS_TABLE as CASE_COUNTS
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.projections.test_runner import tell_a_story


@pytest.mark.parametrize("table", [timeline.TABLE, CASE_COUNTS, ACTIVITY_COUNTS])
def test_the_views_written_a_row_per_event_have_no_rowid_on_sqlite(
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
