"""The SLA clock: record warnings and breaches when running steps come due.

The deadlines live in the SLA ledger, which is derived from the events; the keeper holds
nothing of its own but the time of the next one. When moments come due it records the
warnings and breaches through the use case, all of them in one transaction (group commit,
in chunks of :data:`BATCH`), each checked on its own against the case's current state: a
step done meanwhile, or a warning another process already recorded, is refused by the case
and so recorded at most once per case, step and round; a refused one never sinks the others.
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
from projections.ledger import StepRun
from projections.runner import Runner
from projections.store import ViewStore

SYSTEM = Context(Actor.system(), Channel.SYSTEM)

#: Due moments recorded per transaction; a long outage's backlog is recorded in chunks of this size.
BATCH = 500


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

    def __init__(
        self, app: PingjingApp, views: ViewStore, runner: Runner, clock: Clock, *, batch: int = BATCH
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self.app = app
        self.views = views
        self.runner = runner
        self.clock = clock
        self.batch = batch

    def refresh(self) -> datetime | None:
        """Bring the ledger up to date with the log; the next moment something comes due."""
        self.runner.catch_up()
        return ledger.next_due(self.views)

    def fire_due(self, now: datetime | None = None) -> list[Fired]:
        """Record every warning and breach due by ``now`` (default: the clock), earliest first.

        Each chunk of :attr:`batch` due moments is one ``execute_batch`` (one transaction);
        every moment gets its own :class:`Fired`, refused ones with the case's reason.
        """
        now = now or self.clock.now()
        self.runner.catch_up()
        due = ledger.due_until(self.views, now)
        fired: list[Fired] = []
        for start in range(0, len(due), self.batch):
            chunk = due[start : start + self.batch]
            outcomes = self.app.execute_batch(
                [(_command(kind, run), SYSTEM) for kind, run in chunk], all_or_nothing=False
            )
            for (kind, run), outcome in zip(chunk, outcomes, strict=True):
                due_at = run.deadline if kind == "breach" else run.warn_at
                if isinstance(outcome, PingjingError):
                    fired.append(Fired(kind, run.case_ref, run.step, run.round, due_at, False, str(outcome)))
                else:
                    fired.append(Fired(kind, run.case_ref, run.step, run.round, due_at, True))
        return fired


def _command(kind: str, run: StepRun) -> c.RecordSlaWarning:
    """The use case that records a due moment of ``run``."""
    command_class = c.RecordSlaBreach if kind == "breach" else c.RecordSlaWarning
    return command_class(ref=run.case_ref, step=run.step, round=run.round)
