"""The SLA clock: record warnings and breaches when running steps come due.

The deadlines live in the SLA ledger, which is derived from the events; the keeper holds
nothing of its own but the time of the next one. When a moment comes due it records the
warning or breach through the use case, which checks it against the case's current
state: a step done meanwhile, or a warning another process already recorded, is refused
by the case and so recorded at most once per case, step and round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain import commands as c
from domain.application import Context, PingjingApp
from domain.clock import Clock
from domain.errors import PingjingError
from domain.values import Actor, Channel
from projections import ledger
from projections.runner import Runner
from projections.store import ViewStore

SYSTEM = Context(Actor.system(), Channel.SYSTEM)


@dataclass(frozen=True)
class Fired:
    """One due moment and what became of it."""

    kind: str  # "warning" | "breach"
    ref: str
    step: str
    round: int
    due_at: datetime
    recorded: bool
    reason: str = ""


class DeadlineKeeper:
    """Follows the ledger and records what has come due."""

    def __init__(self, app: PingjingApp, views: ViewStore, runner: Runner, clock: Clock) -> None:
        self.app = app
        self.views = views
        self.runner = runner
        self.clock = clock

    def refresh(self) -> datetime | None:
        """Bring the ledger up to date with the log; the next moment something comes due."""
        self.runner.catch_up()
        return ledger.next_due(self.views)

    def fire_due(self, now: datetime | None = None) -> list[Fired]:
        """Record every warning and breach due by ``now`` (default: the clock)."""
        now = now or self.clock.now()
        self.runner.catch_up()
        fired = []
        for kind, run in ledger.due_until(self.views, now):
            command_class = c.RecordSlaBreach if kind == "breach" else c.RecordSlaWarning
            command = command_class(ref=run.case_ref, step=run.step, round=run.round)
            outcome = self.app.execute_batch([(command, SYSTEM)])[0]
            due_at = run.deadline if kind == "breach" else run.warn_at
            if isinstance(outcome, PingjingError):
                fired.append(Fired(kind, run.case_ref, run.step, run.round, due_at, False, str(outcome)))
            else:
                fired.append(Fired(kind, run.case_ref, run.step, run.round, due_at, True))
        return fired
