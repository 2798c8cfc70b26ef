"""One runner per process: its follower, its deadline keeper and its requests take turns with it.

``pingjing serve`` hands the same :class:`Runner` to the projection thread, the scheduler's
deadline keeper and the HTTP app; a catch-up that starts while another is under way waits
for it, then finds nothing left to fold.
"""

from __future__ import annotations

import threading
from pathlib import Path

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from projections import ALL
from projections.analyst import rebuild_in_memory
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.projections.test_runner import tell_a_story
from tests.viewdump import dump


def test_a_second_catch_up_waits_for_the_first_and_then_has_nothing_to_fold(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    try:
        tell_a_story(County(app, clock).setup())
        views = ViewStore.beside(app)
        runner = Runner(app, views, ALL, page=10)
        inside, release = threading.Event(), threading.Event()

        def hold(position: int, head: int) -> None:
            inside.set()
            release.wait(10)

        first_applied: list[int] = []
        first = threading.Thread(target=lambda: first_applied.append(runner.catch_up(progress=hold)))
        first.start()
        assert inside.wait(10), "the first catch-up is under way"
        second_applied: list[int] = []
        second = threading.Thread(target=lambda: second_applied.append(runner.catch_up()))
        second.start()
        second.join(0.3)
        assert second.is_alive(), "the second catch-up waits for the first"
        release.set()
        first.join(10)
        second.join(10)
        assert first_applied[0] > 0
        assert second_applied == [0], "what the first folded is not folded again"

        assert dump(views) == dump(rebuild_in_memory(app))
    finally:
        app.close()


def test_the_http_app_catches_up_with_the_runner_it_is_given(tmp_path: Path) -> None:
    rt = bootstrap(Settings(database=str(tmp_path / "events.sqlite3")), observers=[], configure_logging=False)
    try:
        views = ViewStore.beside(rt.app)
        runner = Runner(rt.app, views, ALL)
        assert create_app(rt, views=views, runner=runner).state.services.runner is runner
        assert create_app(rt, views=views).state.services.runner is not runner
    finally:
        rt.close()
