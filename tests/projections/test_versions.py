"""A projection's tables have a shape (its ``version``): a store holding rows of another shape
has them dropped when a runner opens it, and catching up rebuilds them.

A store made before the counts were kept in one row per scope and period (a row per metric,
and no versions recorded) is the case every existing deployment meets once.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

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


def test_a_store_of_the_old_shape_is_dropped_and_rebuilt_as_one_of_the_new(county: County) -> None:
    tell_a_story(county)
    app = county.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    narrow_counts(views)

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

    again = Runner(app, views, ALL)

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


def test_an_old_store_is_dropped_once_the_next_runner_finds_it_of_this_shape(county: County) -> None:
    tell_a_story(county)
    app = county.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    narrow_counts(views)

    first = Runner(app, views, ALL)
    first.catch_up()
    folded = dump(views)
    second = Runner(app, views, ALL)

    assert second.upgrade() == []
    assert dump(views) == folded


def _month(views: ViewStore) -> Period:
    period = views.query("SELECT MAX(period) FROM pj_activity_counts WHERE period NOT LIKE ?", ("%W%",))[0][0]
    return parse_period(period)
