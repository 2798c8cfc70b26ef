"""What the routes share: the runtime, the views (caught up before they are read), the roster, the metrics.

One :class:`Services` per app, on ``app.state.services``; routers added later (the citizen
pages, the console) reach it the same way, through :func:`services`.
"""

from __future__ import annotations

import threading
from dataclasses import InitVar, dataclass, field
from typing import cast

from fastapi import Request

from adapters.bootstrap import Runtime
from adapters.http.committer import GroupCommitter
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.directory import Directory
from domain.registry import Officer, Unit
from domain.usecases import Receipt
from projections import ALL
from projections.runner import Runner, Status
from projections.store import ViewStore
from scheduler.service import SchedulerService


class Roster(Directory):
    """The domain's directory of units and officers, with a listing for the API."""

    def units(self) -> list[Unit]:
        """Every unit, by code."""
        self.catch_up()
        with self._lock:
            found = [a for a in self._aggregates.values() if isinstance(a, Unit)]
        return sorted(found, key=lambda u: u.code)

    def officers(self) -> list[Officer]:
        """Every officer, by badge."""
        self.catch_up()
        with self._lock:
            found = [a for a in self._aggregates.values() if isinstance(a, Officer)]
        return sorted(found, key=lambda o: o.badge)


@dataclass
class Services:
    """Everything a request handler needs, built once per app."""

    rt: Runtime
    views: ViewStore
    scheduler: SchedulerService | None = None
    #: The process's runner, shared with its follower and deadline keeper (None: one of its own).
    shared_runner: InitVar[Runner | None] = None
    roster: Roster = field(init=False)
    runner: Runner = field(init=False)
    committer: GroupCommitter = field(init=False)
    _reading: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self, shared_runner: Runner | None) -> None:
        self.roster = Roster(self.rt.app.recorder, self.rt.app.mapper)
        # Reads bring the views up to the log first (read your writes), with the process's runner
        # or one of their own; a projection process elsewhere may do the same, exactly once between them.
        self.runner = shared_runner or Runner(self.rt.app, self.views, ALL, policy=self.rt.policy)
        self.committer = GroupCommitter(self.rt.app)

    @property
    def app(self) -> PingjingApp:
        """The application."""
        return self.rt.app

    async def submit(self, command: c.Command, context: Context) -> Receipt:
        """Run a command in the next group commit; its receipt once durable, or its domain error."""
        return await self.committer.submit(command, context)

    def current_views(self) -> ViewStore:
        """The views, caught up with the log."""
        with self._reading:
            self.runner.catch_up()
        return self.views

    def projection_status(self) -> list[Status]:
        """Each projection's position and lag."""
        return self.runner.status()

    def scheduler_state(self) -> str:
        """``leader``, ``follower`` or ``disabled``."""
        if self.scheduler is None:
            return "disabled"
        return "leader" if self.scheduler.leading else "follower"


async def services(request: Request) -> Services:
    """The app's services (a FastAPI dependency; ``async`` so that FastAPI calls it inline, not in a thread)."""
    return cast(Services, request.app.state.services)
