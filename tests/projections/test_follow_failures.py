"""A follower outlives its store going away: it waits, tries again, and resumes where the stored position says."""

from __future__ import annotations

import threading
from pathlib import Path

from eventsourcing.persistence import OperationalError
from structlog.testing import capture_logs

from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.viewdump import dump


def test_a_follower_that_cannot_reach_the_store_waits_and_resumes_without_counting_twice(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    county = County(app, clock).setup()
    for _ in range(5):
        county.open_case()
    views = ViewStore.beside(app)
    runner = Runner(app, views, ALL)
    real = runner.catch_up
    failures = iter([OperationalError("server closed the connection unexpectedly")] * 2)
    caught_up = threading.Event()

    def flaky(**kwargs: object) -> int:
        failure = next(failures, None)
        if failure is not None:
            real(until_position=3)  # part of the way, then the store goes away
            raise failure
        applied = real(**kwargs)  # type: ignore[arg-type]
        if runner.status()[0].lag == 0:
            caught_up.set()
        return applied

    runner.catch_up = flaky  # type: ignore[method-assign]
    stop = threading.Event()
    with capture_logs() as logs:
        follower = threading.Thread(target=runner.run_forever, args=(stop,), kwargs={"poll": 0.01})
        follower.start()
        assert caught_up.wait(30)
        stop.set()
        follower.join(10)
    assert not follower.is_alive()
    warnings = [entry for entry in logs if entry["event"] == "projections_store_unreachable"]
    assert [w["failures"] for w in warnings] == [1, 2]
    assert warnings[0]["error"] == "OperationalError"
    fresh = ViewStore.sqlite_file(tmp_path / "rebuilt.sqlite3")
    Runner(app, fresh, ALL).catch_up()
    assert dump(views) == dump(fresh)
    app.close()
