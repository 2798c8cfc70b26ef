"""The scheduler process: APScheduler, leadership, and handing over when the leader goes."""

from __future__ import annotations

import time
from pathlib import Path

from domain.application import PingjingApp
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.leader import FileLeadership
from scheduler.service import SchedulerService
from tests.conftest import County, make_app
from tests.fakes import FakeClock


def service_for(app: PingjingApp, clock: FakeClock, lock: Path) -> SchedulerService:
    views = ViewStore.beside(app)
    keeper = DeadlineKeeper(app, views, Runner(app, views, ALL), clock)
    return SchedulerService(keeper, FileLeadership(lock), sync_seconds=0.1)


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
