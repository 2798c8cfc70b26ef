"""The scheduler process: APScheduler, leadership, and handing over when the leader goes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.settings import Settings
from adapters.store import resolve
from bench.scheduler import CompressedClock
from domain.application import PingjingApp
from domain.clock import Clock
from projections import ALL, ledger
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.leader import FileLeadership
from scheduler.service import SchedulerService, Wall
from tests.conftest import County, make_app
from tests.fakes import FakeClock, SequentialIds


def service_for(
    app: PingjingApp, clock: Clock, lock: Path, *, sync_seconds: float = 0.1, wall: Wall | None = None
) -> SchedulerService:
    views = ViewStore.beside(app)
    keeper = DeadlineKeeper(app, views, Runner(app, views, ALL), clock)
    return SchedulerService(keeper, FileLeadership(lock), sync_seconds=sync_seconds, wall=wall)


def breaches(app: PingjingApp, ref: str, step: str = "contact") -> int:
    return sum(1 for e in app.case_events(ref) if type(e).__name__ == "SlaBreached" and e.step == step)


def wait_for(condition, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_only_one_scheduler_leads_and_another_takes_over_when_it_stops(tmp_path: Path, clock: FakeClock) -> None:
    database, lock = str(tmp_path / "events.sqlite3"), tmp_path / "scheduler.lock"
    first_app, second_app = make_app(database, clock), make_app(database, clock)
    ref = County(first_app, clock).setup().open_case()
    first, second = service_for(first_app, clock, lock), service_for(second_app, clock, lock)
    first.start()
    assert wait_for(lambda: first.leading)
    second.start()
    time.sleep(0.3)
    assert not second.leading, "a second scheduler must not lead while the first does"
    first.stop()
    assert wait_for(lambda: second.leading), "the follower takes over when the leader stops"
    clock.advance(hours=25)
    assert wait_for(lambda: breaches(second_app, ref) == 1)
    time.sleep(0.3)
    assert breaches(second_app, ref) == 1
    second.stop()
    first_app.close()
    second_app.close()


def test_a_deadline_that_passed_while_nothing_ran_fires_at_start(tmp_path: Path, clock: FakeClock) -> None:
    database = str(tmp_path / "events.sqlite3")
    app = make_app(database, clock)
    ref = County(app, clock).setup().open_case()
    clock.advance(days=3)  # contact (24 h) and feedback (3 working days) both passed meanwhile
    service = service_for(app, clock, tmp_path / "scheduler.lock")
    service.start()
    try:
        assert wait_for(lambda: breaches(app, ref) == 1 and breaches(app, ref, "feedback") == 1)
        time.sleep(0.3)
        assert (breaches(app, ref), breaches(app, ref, "feedback")) == (1, 1)
    finally:
        service.stop()
        app.close()


def test_the_wake_up_is_set_at_the_wall_clock_moment_the_wall_function_gives(tmp_path: Path) -> None:
    ahead = timedelta(days=400)
    clock = FakeClock(datetime.now(UTC) + ahead)  # domain time more than a year ahead of the wall clock
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    County(app, clock).setup().open_case()
    warning = clock.now() + timedelta(hours=19.2)
    # No sync tick after the first: only the wake-up could record anything.
    service = service_for(app, clock, tmp_path / "scheduler.lock", sync_seconds=3600, wall=lambda d: d - ahead)
    service.start()
    try:
        assert service.ticked.wait(10)
        assert service.wake_at == warning - ahead, "woken at the wall-clock moment of the warning, not a year on"
    finally:
        service.stop()
        app.close()


def test_a_clock_running_ahead_of_the_wall_clock_drives_the_wake_ups(tmp_path: Path) -> None:
    # Domain time starts a day ahead and runs 36,000 times faster than the wall clock: the
    # contact warning (19.2 h after opening) falls about 2 s of real time later, the breach 2.4 s.
    clock = CompressedClock(datetime.now(UTC) + timedelta(days=1), 36_000)
    store = resolve(Settings(database=str(tmp_path / "events.sqlite3")).database)
    app = PingjingApp(env=store.env, clock=clock, ids=SequentialIds())
    ref = County(app, clock).setup().open_case()  # type: ignore[arg-type]
    service = service_for(app, clock, tmp_path / "scheduler.lock", sync_seconds=3600, wall=clock.wall)
    service.start()
    try:
        assert wait_for(lambda: breaches(app, ref) == 1, 60), "recorded by the wake-ups alone"
    finally:
        service.stop()
    (run,) = [r for r in ledger.steps_of(service.keeper.views, ref) if r.step == "contact"]
    recorded = {type(e).__name__: e.meta.occurred_at for e in app.case_events(ref)}
    assert recorded["SlaWarned"] >= run.warn_at, "never before it is due"
    assert recorded["SlaBreached"] >= run.deadline
    app.close()
