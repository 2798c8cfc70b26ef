"""The scheduler process: APScheduler wakes the deadline keeper while this process leads.

Two jobs: one at the next moment something comes due (rescheduled after every run), and a
periodic one that catches the ledger up with new cases and finished steps and tries to
take the lead when another process had it. Deadlines are read from the ledger each time,
so nothing is lost when the scheduler stops: at start, what passed meanwhile fires at once.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.deadlines import DeadlineKeeper, Fired
from scheduler.leader import Leadership

log = structlog.get_logger("pingjing.scheduler")


class SchedulerService:
    """Runs a :class:`DeadlineKeeper` on APScheduler, one leader at a time."""

    def __init__(self, keeper: DeadlineKeeper, leadership: Leadership, *, sync_seconds: float = 5.0) -> None:
        self.keeper = keeper
        self.leadership = leadership
        self.sync_seconds = sync_seconds
        self.leading = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        """Start the jobs; the first run happens at once."""
        self._scheduler.add_job(
            self.tick, IntervalTrigger(seconds=self.sync_seconds), id="sync", max_instances=1, coalesce=True,
            next_run_time=datetime.now(UTC),
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
            fired = self.keeper.fire_due()
            for f in fired:
                log.info(f"sla_{f.kind}_recorded" if f.recorded else f"sla_{f.kind}_skipped",
                         case_ref=f.ref, step=f.step, round=f.round, due_at=f.due_at.isoformat(), reason=f.reason)
            upcoming = self.keeper.refresh()
            if upcoming is not None and not self._stopping.is_set():
                with contextlib.suppress(SchedulerNotRunningError):  # stopping meanwhile
                    self._scheduler.add_job(
                        self.tick, DateTrigger(run_date=max(upcoming, datetime.now(UTC))), id="wake",
                        replace_existing=True, misfire_grace_time=None,
                    )
            return fired

    def stop(self) -> None:
        """Stop the jobs, wait for a run in progress to finish, and give the lead up."""
        self._stopping.set()
        # Not wait=True: APScheduler would hold its own lock while a running tick needs it.
        self._scheduler.shutdown(wait=False)
        with self._lock:
            self.leadership.release()
            self.leading = False
