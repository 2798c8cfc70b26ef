"""The scheduler process: APScheduler wakes the deadline keeper while this process leads.

Two jobs of its own: one at the next moment something comes due (rescheduled after every
run), and a periodic one that catches the ledger up with new cases and finished steps and
tries to take the lead when another process had it. Deadlines are read from the ledger
each time, so nothing is lost when the scheduler stops: at start, what passed meanwhile
fires at once.

Other work that must happen once, not once per process (the weekly and monthly reports,
the notification outbox), comes in as :class:`LeaderJob` s: each runs on its own trigger,
but only while this process leads; in a follower it does nothing.

The keeper's clock tells domain time. ``wall`` maps a domain moment to the real moment
at which to wake for it. By default the clock is taken to run at wall-clock speed (the
identity for the system clock); a clock that runs faster than the wall clock (a
benchmark, a demonstration) passes its own mapping and drives the real scheduler.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from domain.clock import Clock
from scheduler.deadlines import DeadlineKeeper, Fired
from scheduler.leader import Leadership

log = structlog.get_logger("pingjing.scheduler")

#: Maps a domain moment (the keeper's clock) to the wall-clock moment at which to act on it.
Wall = Callable[[datetime], datetime]

_OWN_JOBS = ("sync", "wake")


@dataclass(frozen=True)
class LeaderJob:
    """A job that runs on ``trigger`` only while this process leads.

    It is added with ``coalesce=True``, ``max_instances=1`` and no misfire grace time: runs
    missed while the process was busy or paused collapse into one, which still happens.
    An exception in ``func`` is logged and the job runs again at its next time.
    """

    id: str
    trigger: BaseTrigger
    func: Callable[[], object]


def at_clock_speed(clock: Clock) -> Wall:
    """The default ``wall``: ``clock`` is taken to run at wall-clock speed from now on, so a moment
    ``d`` ahead on it is ``d`` ahead on the wall clock. For the system clock this is the identity; for
    a clock set in the past (a replay, a test's fake clock) the wake-up is not in the past, where it
    would fire again and again before the clock gets there."""

    def wall(moment: datetime) -> datetime:
        return datetime.now(UTC) + (moment - clock.now())

    return wall


class SchedulerService:
    """Runs a :class:`DeadlineKeeper` and the leader's jobs on APScheduler, one leader at a time."""

    def __init__(
        self,
        keeper: DeadlineKeeper,
        leadership: Leadership,
        *,
        sync_seconds: float = 5.0,
        jobs: Sequence[LeaderJob] = (),
        wall: Wall | None = None,
    ) -> None:
        ids = [job.id for job in jobs]
        clashes = sorted({i for i in ids if ids.count(i) > 1 or i in _OWN_JOBS})
        if clashes:
            raise ValueError(f"job ids must be unique and not {', '.join(_OWN_JOBS)}: {', '.join(clashes)}")
        self.keeper = keeper
        self.leadership = leadership
        self.sync_seconds = sync_seconds
        self.jobs = tuple(jobs)
        self.wall: Wall = wall or at_clock_speed(keeper.clock)
        self.leading = False
        #: The wall-clock moment of the next wake-up (None before the first tick as leader,
        #: or when nothing is running against a deadline).
        self.wake_at: datetime | None = None
        #: Set whenever a tick as leader has finished: what was due recorded, the next wake-up set.
        self.ticked = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._jobs_idle = threading.Condition()
        self._jobs_running = 0
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        """Start the jobs; the first tick happens at once, the leader's jobs on their triggers."""
        self._scheduler.add_job(
            self._scheduled_tick, IntervalTrigger(seconds=self.sync_seconds), id="sync", max_instances=1,
            coalesce=True, next_run_time=datetime.now(UTC),
        )
        for job in self.jobs:
            self._scheduler.add_job(
                self._run_job, job.trigger, args=(job,), id=job.id, name=job.id, coalesce=True, max_instances=1,
                misfire_grace_time=None,
            )
        self._scheduler.start()

    def tick(self) -> list[Fired]:
        """Lead if possible, record what is due, and set the wake-up for the next due moment."""
        with self._lock:
            if self._stopping.is_set():
                return []
            if not self.leading:
                self.leading = self.leadership.try_acquire()
                if not self.leading:
                    return []
                log.info("scheduler_leading")
            fired = self._record_due()
            upcoming = self.keeper.refresh()
            self._wake_for(upcoming)
            self.ticked.set()
            return fired

    def stop(self) -> None:
        """Stop the jobs, wait for runs in progress to finish, and give the lead up (again: nothing)."""
        self._stopping.set()
        # Not wait=True: APScheduler would hold its own lock while a running tick needs it.
        with contextlib.suppress(SchedulerNotRunningError):  # stopped already, or never started
            self._scheduler.shutdown(wait=False)
        with self._jobs_idle:
            # A leader's job still running must finish before another process may lead.
            self._jobs_idle.wait_for(lambda: self._jobs_running == 0)
        with self._lock:
            self.leadership.release()
            self.leading = False

    def _record_due(self) -> list[Fired]:
        """Record what is due now; one log line each."""
        fired = self.keeper.fire_due()
        for f in fired:
            log.info(f"sla_{f.kind}_recorded" if f.recorded else f"sla_{f.kind}_skipped",
                     case_ref=f.ref, step=f.step, round=f.round, due_at=f.due_at.isoformat(), reason=f.reason)
        return fired

    def _wake_for(self, upcoming: datetime | None) -> None:
        """Set the wake-up at the wall-clock moment of ``upcoming`` (at once if that has passed)."""
        self.wake_at = None
        if upcoming is None or self._stopping.is_set():
            return
        wake_at = max(self.wall(upcoming), datetime.now(UTC))
        with contextlib.suppress(SchedulerNotRunningError):  # stopping meanwhile
            # Two instances: the wake-up this tick runs as is still running when the next one comes
            # due at once (more came due while recording: a busy minute, a fast clock); with one,
            # APScheduler would skip the next, and nothing would wake until the next sync.
            self._scheduler.add_job(
                self._scheduled_tick, DateTrigger(run_date=wake_at), id="wake", replace_existing=True,
                misfire_grace_time=None, max_instances=2,
            )
            self.wake_at = wake_at

    def _scheduled_tick(self) -> None:
        """A tick run by APScheduler: a failure (the database away) is logged; the next sync tries again."""
        try:
            self.tick()
        except Exception:
            log.exception("scheduler_tick_failed")

    def _run_job(self, job: LeaderJob) -> None:
        """Run a leader's job if this process leads; log, never raise, what it throws."""
        with self._jobs_idle:
            if self._stopping.is_set() or not self.leading:
                log.debug("scheduler_job_skipped", job=job.id, reason="not leading")
                return
            self._jobs_running += 1
        started = time.perf_counter()
        try:
            job.func()
        except Exception:
            log.exception("scheduler_job_failed", job=job.id)
        else:
            log.debug("scheduler_job_done", job=job.id, seconds=round(time.perf_counter() - started, 3))
        finally:
            with self._jobs_idle:
                self._jobs_running -= 1
                self._jobs_idle.notify_all()
