"""A projection's tables have a shape (its ``version``): a store holding rows of another shape
has them dropped when a runner opens it, and catching up rebuilds them.

A store made before the counts were kept in one row per scope and period (a row per metric,
and no versions recorded) is the case every existing deployment meets once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

from domain.application import PingjingApp
from domain.rates import Period, parse_period
from projections import ALL
from projections.activity import ActivityProjection
from projections.analyst import rebuild_in_memory
from projections.rates import rates
from projections.runner import Runner
from projections.store import VERSIONS, ViewStore
from tests.conftest import County
from tests.projections.test_runner import positions, tell_a_story
from tests.viewdump import dump


@pytest.fixture
def database(durable_database: str) -> str:
    """A store that outlives its runners, as a deployment's does."""
    return durable_database


def narrow_counts(views: ViewStore) -> None:
    """Make the store look as one of before the versions: counts a row per metric, no versions."""
    with views.transaction(commit=True) as cur:
        for table in ("pj_activity_counts", "pj_case_counts"):
            cur.execute(f"DROP TABLE {table}")
            cur.execute(
                f"CREATE TABLE {table} (scope TEXT NOT NULL, period TEXT NOT NULL, metric TEXT NOT NULL, "
                "value BIGINT NOT NULL, PRIMARY KEY (scope, period, metric))"
            )
            cur.execute(f"INSERT INTO {table} VALUES ('county', '2021-11', 'ratings', 99)")  # noqa: S608
        cur.execute(f"DELETE FROM {VERSIONS}")  # noqa: S608


@pytest.fixture
def old_store(county: County) -> tuple[PingjingApp, ViewStore]:
    """The story, its views folded, then made to look as a store of before the versions."""
    tell_a_story(county)
    app = county.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    narrow_counts(views)
    return app, views


def test_a_store_of_the_old_shape_is_dropped_and_rebuilt_as_one_of_the_new(
    old_store: tuple[PingjingApp, ViewStore],
) -> None:
    app, views = old_store

    runner = Runner(app, views, ALL)

    assert positions(runner) == {"cases": 0, "activity": 0}, "both projections are to be rebuilt"
    runner.catch_up()
    assert dump(views) == dump(rebuild_in_memory(app))
    assert views.query(f"SELECT projection, version FROM {VERSIONS} ORDER BY projection") == [  # noqa: S608
        ("activity", 2),
        ("cases", 2),
    ]


def test_a_store_of_this_shape_keeps_its_rows_and_positions(county: County) -> None:
    tell_a_story(county)
    app = county.app
    views = ViewStore.beside(app)
    first = Runner(app, views, ALL)
    first.catch_up()
    before = dump(views)
    head = app.recorder.max_notification_id()

    with capture_logs() as logs:
        again = Runner(app, views, ALL)

    assert [entry for entry in logs if entry["event"] == "projection_reshaped"] == []
    assert again.upgrade() == []
    assert positions(again) == {"cases": head, "activity": head}
    assert dump(views) == before


class _Reshaped(ActivityProjection):
    """The activity projection as a later version of the code might have it."""

    version: ClassVar[int] = 3


def test_raising_one_projections_version_rebuilds_that_projection_only(county: County) -> None:
    tell_a_story(county)
    app = county.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    head = app.recorder.max_notification_id()
    counted = rates(views, "county", _month(views))

    runner = Runner(app, views, [ALL[0], _Reshaped])

    assert positions(runner) == {"cases": head, "activity": 0}
    runner.catch_up()
    assert rates(views, "county", _month(views)) == counted
    assert Runner(app, views, [ALL[0], _Reshaped]).upgrade() == [], "dropped once, then recorded"


def test_an_old_store_is_dropped_once_the_next_runner_finds_it_of_this_shape(
    old_store: tuple[PingjingApp, ViewStore],
) -> None:
    app, views = old_store

    first = Runner(app, views, ALL)
    first.catch_up()
    folded = dump(views)
    second = Runner(app, views, ALL)

    assert second.upgrade() == []
    assert dump(views) == folded


def _month(views: ViewStore) -> Period:
    period = views.query("SELECT MAX(period) FROM pj_activity_counts WHERE period NOT LIKE ?", ("%W%",))[0][0]
    return parse_period(period)


def test_processes_starting_together_on_an_old_store_drop_it_once_and_all_start(
    old_store: tuple[PingjingApp, ViewStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --workers N`` starts a runner in every process at once: the drop is done by one of
    them under the store's write lock (SQLite) or advisory lock (PostgreSQL); the others find the
    new shape, and none fails."""
    app, views = old_store
    start = threading.Barrier(4)
    failed: list[BaseException] = []
    # Every runner has looked (without the lock) and seen the old shape before any drops it.
    looked = threading.Barrier(4)
    look = ViewStore._versions

    def looking(self: ViewStore) -> dict[str, int]:
        seen = look(self)
        looked.wait(timeout=10)
        return seen

    monkeypatch.setattr(ViewStore, "_versions", looking)
    drops: list[tuple[str, ...]] = []
    drop = ViewStore.drop

    def dropping(self: ViewStore, cur: Any, tables: Sequence[str]) -> None:
        drops.append(tuple(tables))
        drop(self, cur, tables)

    monkeypatch.setattr(ViewStore, "drop", dropping)

    def open_runner() -> None:
        try:
            start.wait(timeout=10)
            Runner(app, ViewStore.beside(app), ALL)
        except BaseException as error:  # noqa: BLE001 - reported below
            failed.append(error)

    with capture_logs() as logs:
        threads = [threading.Thread(target=open_runner) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    monkeypatch.setattr(ViewStore, "_versions", look)

    assert failed == []
    assert sorted(drops) == sorted(p.tables for p in ALL), "each projection's tables dropped once"
    reshaped = sorted(entry["projection"] for entry in logs if entry["event"] == "projection_reshaped")
    assert reshaped == ["activity", "cases"]
    runner = Runner(app, views, ALL)
    runner.catch_up()
    assert dump(views) == dump(rebuild_in_memory(app))
