"""The leader's jobs (reports, the notification outbox): they run only in the process that leads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from structlog.testing import capture_logs

from domain.application import PingjingApp
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.leader import FileLeadership
from scheduler.service import LeaderJob, SchedulerService
from tests.conftest import County, make_app
from tests.fakes import FakeClock


def service_for(app: PingjingApp, clock: FakeClock, lock: Path, jobs: Sequence[LeaderJob]) -> SchedulerService:
    views = ViewStore.beside(app)
    keeper = DeadlineKeeper(app, views, Runner(app, views, ALL), clock)
    return SchedulerService(keeper, FileLeadership(lock), sync_seconds=0.1, jobs=jobs)


def every(seconds: float, job_id: str, func: Callable[[], object]) -> LeaderJob:
    """A job on a real interval trigger."""
    return LeaderJob(job_id, IntervalTrigger(seconds=seconds), func)


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_a_leader_job_runs_in_the_leading_process_only(tmp_path: Path, clock: FakeClock) -> None:
    database, lock = str(tmp_path / "events.sqlite3"), tmp_path / "scheduler.lock"
    first_app, second_app = make_app(database, clock), make_app(database, clock)
    County(first_app, clock).setup()
    runs: dict[str, list[float]] = {"first": [], "second": []}
    first = service_for(first_app, clock, lock, [every(0.05, "outbox", lambda: runs["first"].append(time.monotonic()))])
    second = service_for(
        second_app, clock, lock, [every(0.05, "outbox", lambda: runs["second"].append(time.monotonic()))]
    )
    try:
        first.start()
        assert wait_for(lambda: first.leading)
        second.start()
        assert wait_for(lambda: len(runs["first"]) >= 5), "the leader's job runs on its trigger"
        time.sleep(0.3)
        assert not second.leading
        assert runs["second"] == [], "the job does nothing in a process that does not lead"
        first.stop()
        stopped = len(runs["first"])
        assert wait_for(lambda: second.leading), "the follower takes the lead through its own tick"
        assert wait_for(lambda: len(runs["second"]) >= 3), "and then runs the job"
        time.sleep(0.3)
        assert len(runs["first"]) == stopped, "a stopped scheduler runs nothing"
    finally:
        first.stop()
        second.stop()
        first_app.close()
        second_app.close()


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    ref = County(app, clock).setup().open_case()
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise RuntimeError("the mail server is down")

    service = service_for(app, clock, tmp_path / "scheduler.lock", [every(0.05, "outbox", fail)])
    try:
        with capture_logs() as logs:
            service.start()
            assert wait_for(lambda: len(calls) >= 3), "the job keeps running after failing"
            clock.advance(hours=25)
            assert wait_for(
                lambda: any(type(e).__name__ == "SlaBreached" for e in app.case_events(ref))
            ), "the deadline keeper keeps running too"
    finally:
        service.stop()
        app.close()
    failures = [entry for entry in logs if entry["event"] == "scheduler_job_failed"]
    assert failures
    assert failures[0]["job"] == "outbox"
    assert failures[0]["log_level"] == "error"
    assert failures[0]["exc_info"] is True


def test_the_lead_is_given_up_only_after_a_running_job_finishes(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    County(app, clock).setup()
    lock = tmp_path / "scheduler.lock"
    started, finish = threading.Event(), threading.Event()
    runs: list[int] = []

    def report() -> None:
        runs.append(1)
        started.set()
        finish.wait(30)

    service = service_for(app, clock, lock, [every(0.05, "report", report)])
    service.start()
    try:
        assert started.wait(10)
        stopping = threading.Thread(target=service.stop)
        stopping.start()
        time.sleep(0.3)
        assert stopping.is_alive(), "stop waits for the job"
        other = FileLeadership(lock)
        assert not other.try_acquire(), "nobody else may lead while the leader's job still runs"
        finish.set()
        stopping.join(10)
        assert not stopping.is_alive()
        assert other.try_acquire(), "the lead is free once the job is done"
        other.release()
        assert runs == [1], "max_instances=1, and nothing runs after the stop"
    finally:
        finish.set()
        service.stop()
        app.close()


def test_job_ids_are_unique_and_not_the_schedulers_own(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    lock = tmp_path / "scheduler.lock"
    try:
        with pytest.raises(ValueError, match="report"):
            service_for(app, clock, lock, [every(1, "report", lambda: None), every(2, "report", lambda: None)])
        with pytest.raises(ValueError, match="wake"):
            service_for(app, clock, lock, [every(1, "wake", lambda: None)])
    finally:
        app.close()
