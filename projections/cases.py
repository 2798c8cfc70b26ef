"""The cases projection: board, SLA ledger, timeline, audit scores and case counts.

They all follow one case's events, so one projection keeps them: it folds each case with
the domain's own aggregate (the same code that decided the events), compares which step
clocks run before and after each event, and derives every row from that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from operator import attrgetter, itemgetter
from typing import Any, ClassVar
from uuid import UUID

from domain.audit import DEDUCTIONS, audit_score
from domain.case import Case
from domain.sla import step_clock
from domain.values import CaseKind, Channel, Role
from domain.workflow import CaseState, CloseOutcome, SlaStep
from projections import board, ledger, timeline
from projections.base import Context, Projection, Share
from projections.counts import Counts, Metrics
from projections.ledger import CANCELLED, LATE, MISSED, ON_TIME, StepRun
from projections.store import Cursor, ViewStore

COUNTS_TABLE = "pj_case_counts"
AUDIT_TABLE = "pj_audit"
AUDIT_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (case_ref TEXT PRIMARY KEY, unit_code TEXT NOT NULL, "
    "score INTEGER NOT NULL, deductions TEXT NOT NULL, state TEXT NOT NULL)",
)
AUDIT_UPSERT = (
    f"INSERT INTO {AUDIT_TABLE} VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_ref) DO UPDATE SET "
    "score = excluded.score, deductions = excluded.deductions, state = excluded.state"
)
_ENDING = ("Closed", "Reopened")
_CLOSED = CaseState.CLOSED
_DEADLINE = attrgetter("deadline")
#: The primary keys of the rows written, to write them in key order.
_FIRST = itemgetter(0)
_LEDGER_KEY = itemgetter(0, 1, 2, 3)
_LINE_KEY = itemgetter(0, 1)
#: The text of each enumeration member the rows hold (``.value``, looked up faster).
_VALUE: dict[StrEnum, str] = {
    member: member.value for kind in (SlaStep, CaseState, CaseKind, Channel, Role, CloseOutcome) for member in kind
}
#: The keys of ``CaseView.seqs`` (``"feedback:1"``), one string for every case that has it.
_SEQ_KEYS: dict[tuple[str, int], str] = {}
#: The metric of a step's run counted by its deadline, and of one done on time, per step.
_DUE = {step.value: (f"step_due:{step.value}",) for step in SlaStep}
_ON_TIME = {step.value: (f"step_on_time:{step.value}",) for step in SlaStep}
#: What the cases projection counts (one column each).
METRICS = Metrics(
    COUNTS_TABLE,
    (
        "cases_opened",
        "callable_opened",
        "callable_reached",
        "rect_ordered",
        "rect_reported",
        "rect_verified",
        "flagged",
        "breaches",
        "accountability",
        "commendations",
        *(metric for step in SlaStep for metric in (*_DUE[step.value], *_ON_TIME[step.value])),
    ),
)

LoadCase = Callable[[UUID, int], Case]
Row = tuple[Any, ...]
#: A batch's rows: board, audit, ledger, timeline, cases whose contact was erased, counts.
_Rows = tuple[list[Row], list[Row], list[Row], list[Row], set[str], list[list[Any]]]


@dataclass(slots=True)
class CaseView:
    """What the projection keeps per case between events."""

    case: Case
    steps: dict[SlaStep, StepRun] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    deductions: list[str] = field(default_factory=list)
    timeline_seq: int = 0
    reached: bool = False
    order_at: datetime | None = None
    order_reported: bool = False
    order_verified: bool = False
    position: int = 0
    # Derived from the registry (the case's unit and officer never change): worked out again
    # only when the registry has changed since ``registry_at``.
    scopes: tuple[str, ...] = ()
    unit_code: str = ""
    registry_at: int = -1

    def private(self) -> str:
        """The projection's own bookkeeping, stored with the board row for restarts."""
        return json.dumps(
            {
                "seqs": self.seqs,
                "deductions": self.deductions,
                "timeline_seq": self.timeline_seq,
                "reached": self.reached,
                "order_at": board.ts(self.order_at),
                "order_reported": self.order_reported,
                "order_verified": self.order_verified,
            }
        )


class CasesProjection(Projection):
    """Board, ledger, timeline, audit and case counts."""

    name = "cases"
    #: 2: counts in one row per scope and period, a column per metric (was a row per metric).
    version = 2
    schema: ClassVar[tuple[str, ...]] = (
        *board.SCHEMA,
        *ledger.SCHEMA,
        *timeline.SCHEMA,
        *AUDIT_SCHEMA,
        *METRICS.schema(),
    )
    tables = (board.TABLE, ledger.TABLE, timeline.TABLE, AUDIT_TABLE, COUNTS_TABLE)
    sources = (Case,)
    # Every row but the counts belongs to one case, and each case is folded from its own events.
    shardable = True
    #: Once more than this many cases are in memory, those closed more than :attr:`keep_closed_for`
    #: before the latest event folded are let go of (after a flush): a process that follows the log
    #: for years keeps its open cases and the recently closed ones, not every case ever opened. A
    #: case let go of that hears more (reopened, its contact erased) is restored from its rows, as
    #: after a restart; the year covers the contact's erasure (180 days by default) and most
    #: reopenings, so a rebuild restores few.
    keep_cases: ClassVar[int] = 20_000
    keep_closed_for: ClassVar[timedelta] = timedelta(days=366)

    def __init__(self, views: ViewStore, context: Context, share: Share | None = None) -> None:
        super().__init__(views, context, share)
        self.load_case: LoadCase = context.load_case
        self.forget()

    def forget(self) -> None:
        """Start from what is stored."""
        # Keyed by the case id's integer: hashing it is cheaper than hashing the UUID.
        self.cases: dict[int, CaseView] = {}
        self.counts = Counts(METRICS)
        self.dirty: dict[int, CaseView] = {}
        self.dirty_steps: dict[tuple[str, str, int, int], StepRun] = {}
        self.new_lines: list[tuple[Any, ...]] = []
        #: Cases whose contact was erased in this batch: their opening line is rewritten at the flush.
        self.erased_contacts: set[str] = set()
        #: The rows made by :meth:`prepare`, for :meth:`flush` to write.
        self.pending: _Rows | None = None
        self.fresh = self.views.position(self.tracking_name) == 0
        #: The cases in memory that are closed (by the key of :attr:`cases`), to let go of (:meth:`_let_go`).
        self.closed: set[int] = set()
        #: When the latest event folded happened.
        self.latest: datetime | None = None

    # -- folding ----------------------------------------------------------------------------

    def apply(self, position: int, event: Any) -> None:
        """Fold one event in; only case events matter here."""
        if not isinstance(event, Case.Event):
            return
        self._case_event(position, event)

    def _case_event(self, position: int, event: Any) -> None:
        view = self._view(event)
        before = dict(view.case.running) if view is not None else {}
        case: Case = event.mutate(view.case if view is not None else None)
        key = case.id.int
        if view is None:
            view = self.cases[key] = CaseView(case)
        view.case = case
        view.position = position
        self._derive(view)
        name = type(event).__name__
        at: datetime = event.meta.occurred_at
        self._steps(view, name, before, at)
        self._facts(view, name, event, at)
        self._timeline(view, name, event, position, at)
        if name == "ContactErased":
            self.erased_contacts.add(case.ref)
        if case.state is _CLOSED:
            self.closed.add(key)
        else:
            self.closed.discard(key)
        self.latest = at
        self.dirty[key] = view

    def _view(self, event: Any) -> CaseView | None:
        view = self.cases.get(event.originator_id.int)
        if view is None and not isinstance(event, Case.Opened) and not self.fresh:  # type: ignore[attr-defined]
            view = self._restore(event.originator_id)
        return view

    def _restore(self, case_id: UUID) -> CaseView | None:
        rows = self.views.query(
            f"SELECT case_ref, version, position, private FROM {board.TABLE} WHERE case_id = ?",
            (str(case_id),),
        )
        if not rows:
            return None
        ref, version, position, private = rows[0]
        data = json.loads(private)
        view = CaseView(
            case=self.load_case(case_id, int(version)),
            seqs=data["seqs"],
            deductions=data["deductions"],
            timeline_seq=data["timeline_seq"],
            reached=data["reached"],
            order_at=board.from_opt(data["order_at"]),
            order_reported=data["order_reported"],
            order_verified=data["order_verified"],
            position=int(position),
        )
        for run in ledger.running(self.views, ref):
            view.steps[SlaStep(run.step)] = run
        self.cases[case_id.int] = view
        return view

    def _derive(self, view: CaseView) -> None:
        """The case's scopes and unit code, as the registry now has them."""
        context = self.context
        if view.registry_at != context.registry_changes:
            case = view.case
            view.scopes = context.registry.scopes(case.unit_id, case.officer_id)
            view.unit_code = context.registry.unit_code(case.unit_id)
            view.registry_at = context.registry_changes

    def _steps(self, view: CaseView, name: str, before: dict[SlaStep, datetime], at: datetime) -> None:
        case = view.case
        after = case.running
        for step, started in before.items():
            if after.get(step) != started and step in view.steps:
                self._end(view, view.steps.pop(step), at, done=name not in _ENDING)
        for step, started in after.items():
            if before.get(step) != started:
                self._start(view, step, started)

    def _start(self, view: CaseView, step: SlaStep, started: datetime) -> None:
        case = view.case
        ctx = self.context
        # Flagged before this step started (in log order): a step already running keeps its deadline.
        flagged = case.flagged_at is not None
        due = case.rectification_due if step is SlaStep.RECTIFICATION else None
        warn_at, due_at = step_clock(ctx.policy, ctx.calendar, step, started, flagged=flagged, due_at=due)
        value = _VALUE[step]
        round_ = case.round
        key = _SEQ_KEYS.get((value, round_)) or _SEQ_KEYS.setdefault((value, round_), f"{value}:{round_}")
        seqs = view.seqs
        seq = seqs[key] = seqs.get(key, 0) + 1
        # case_ref, step, round, seq, unit_code, started_at, warn_at, deadline, flagged
        run = StepRun(case.ref, value, round_, seq, view.unit_code, started, warn_at, due_at, flagged)
        view.steps[step] = run
        self._dirty_step(run)

    def _end(self, view: CaseView, run: StepRun, at: datetime, *, done: bool) -> None:
        run.ended_at = at
        late = at > run.deadline
        if done:
            run.status = LATE if late else ON_TIME
        else:
            run.status = MISSED if late or run.step == SlaStep.CALLBACK.value else CANCELLED
        if run.status in (ON_TIME, LATE) or (run.status == MISSED and late):
            scopes = view.scopes
            self.counts.add_all(scopes, run.deadline, _DUE[run.step])
            if run.status == ON_TIME:
                self.counts.add_all(scopes, run.deadline, _ON_TIME[run.step])
        if run.status == LATE:
            view.deductions.append("late_step")
        elif run.status == MISSED:
            view.deductions.append("missed_step")
        self._dirty_step(run)

    def _dirty_step(self, run: StepRun) -> None:
        self.dirty_steps[(run.case_ref, run.step, run.round, run.seq)] = run

    def _facts(self, view: CaseView, name: str, event: Any, at: datetime) -> None:  # noqa: PLR0912 - a branch per event
        case = view.case
        scopes = view.scopes
        count = self.counts.add
        if name == "Opened":
            count(scopes, at, "cases_opened")
            if case.callable:
                count(scopes, at, "callable_opened")
        elif name == "CallbackRecorded" and case.callable and not view.reached:
            view.reached = True
            count(scopes, case.opened_at, "callable_reached")
        elif name == "RectificationOrdered":
            view.order_at, view.order_reported, view.order_verified = at, False, False
            count(scopes, at, "rect_ordered")
        elif name == "RectificationReported" and view.order_at and not view.order_reported:
            view.order_reported = True
            count(scopes, view.order_at, "rect_reported")
        elif name == "Verified" and event.implemented and view.order_at and not view.order_verified:
            view.order_verified = True
            count(scopes, view.order_at, "rect_verified")
        elif name == "Flagged":
            count(scopes, at, "flagged")
        elif name in ("SlaWarned", "SlaBreached"):
            self._mark_sla(view, name, event, at, scopes)
        elif name == "CallbackAttemptFailed":
            view.deductions.append("failed_callback")
        elif name == "Reopened":
            view.deductions.append("reopened")
        elif name == "Closed":
            if case.outcome is not CloseOutcome.RESOLVED:
                view.deductions.append("no_resolution")
            elif case.citizen_accepted is False:
                view.deductions.append("not_accepted")
        elif name == "AccountabilityRecorded":
            count(self.context.registry.scopes(case.unit_id, event.officer_id), at, "accountability")
        elif name == "CommendationRecorded":
            count(self.context.registry.scopes(event.unit_id or case.unit_id, event.officer_id), at, "commendations")

    def _mark_sla(self, view: CaseView, name: str, event: Any, at: datetime, scopes: tuple[str, ...]) -> None:
        run = view.steps.get(SlaStep(event.step))
        if run is None:
            return
        if name == "SlaWarned":
            run.warned_at = at
        else:
            run.breached_at = at
            self.counts.add(scopes, at, "breaches")
        self._dirty_step(run)

    def _timeline(self, view: CaseView, name: str, event: Any, position: int, at: datetime) -> None:
        case = view.case
        view.timeline_seq += 1
        zh, en = timeline.EVENT_LABELS.get(name, (name, name))
        meta = event.meta
        steps = view.steps
        if not steps:
            sla = ""
        elif len(steps) == 1:
            run = next(iter(steps.values()))
            sla = f"{run.shown or self._shown(run)}{' OVERDUE' if at > run.deadline else ''}"
        else:
            sla = "; ".join(
                [
                    f"{run.shown or self._shown(run)}{' OVERDUE' if at > run.deadline else ''}"
                    for run in sorted(steps.values(), key=_DEADLINE)
                ]
            )
        actor = "system" if meta.role == "system" else f"{meta.role}:{meta.actor}"
        self.new_lines.append(
            (
                case.ref,
                view.timeline_seq,
                position,
                timeline.local_text(at),
                name,
                zh,
                en,
                actor,
                _VALUE[meta.role],
                _VALUE[meta.channel],
                _VALUE[case.state],
                case.round,
                sla,
                timeline.details(event, self.context.registry),
            )
        )

    @staticmethod
    def _shown(run: StepRun) -> str:
        """How the timeline shows a running step (remembered on the run: its deadline never moves)."""
        run.shown = shown = f"{run.step} due {timeline.local_text(run.deadline)}"
        return shown

    # -- writing ----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Make every row this batch changed, before the write transaction (see :meth:`Projection.prepare`)."""
        if self.pending is None:
            self.pending = self._rows()

    def flush(self, cur: Cursor) -> None:
        """Write the rows this batch changed (made by :meth:`prepare`, or now).

        Rows go in key order, so each table's tree is walked once from left to right.
        """
        board_rows, audit_rows, ledger_rows, lines, erased, counts = self.pending or self._rows()
        self.pending = None
        cur.executemany(board.UPSERT, board_rows)
        cur.executemany(AUDIT_UPSERT, audit_rows)
        cur.executemany(ledger.UPSERT, ledger_rows)
        cur.executemany(timeline.INSERT, lines)
        timeline.erase_contacts(cur, erased)
        self.counts.write(cur, counts)
        self.fresh = False
        self._let_go()

    def _let_go(self) -> None:
        """Forget the cases closed long ago once more than :attr:`keep_cases` are in memory (their rows are written)."""
        cases = self.cases
        if len(cases) <= self.keep_cases or self.latest is None:
            return
        before = self.latest - self.keep_closed_for
        gone = []
        for key in self.closed:
            view = cases.get(key)
            closed_at = view.case.closed_at if view is not None else None
            if closed_at is None or closed_at <= before:
                gone.append(key)
        for key in gone:
            cases.pop(key, None)
            self.closed.discard(key)

    def _rows(self) -> _Rows:
        """The rows of what this batch changed, in key order; the batch is then forgotten."""
        registry = self.context.registry
        board_rows, audit_rows = [], []
        for view in self.dirty.values():
            case = view.case
            deadlines = {run.step: run.deadline_text() for run in view.steps.values()}
            self._derive(view)
            unit_code = view.unit_code
            board_rows.append(
                (
                    case.ref,
                    str(case.id),
                    _VALUE[case.kind],
                    _VALUE[case.intake],
                    unit_code,
                    registry.badge(case.officer_id),
                    _VALUE[case.state],
                    case.round,
                    int(case.flagged),
                    case.flag_reason,
                    board.ts(case.opened_at),
                    board.ts(case.closed_at),
                    _VALUE[case.outcome] if case.outcome else None,
                    None if case.citizen_accepted is None else int(case.citizen_accepted),
                    ",".join(sorted(deadlines)),
                    json.dumps(deadlines),
                    min(deadlines.values(), default=None),
                    case.summary[:200],
                    case.version,
                    view.position,
                    view.private(),
                )
            )
            audit_rows.append(
                (
                    case.ref,
                    unit_code,
                    audit_score(view.deductions),
                    json.dumps(view.deductions),
                    _VALUE[case.state],
                )
            )
        board_rows.sort(key=_FIRST)
        audit_rows.sort(key=_FIRST)
        ledger_rows = sorted([run.values() for run in self.dirty_steps.values()], key=_LEDGER_KEY)
        lines = sorted(self.new_lines, key=_LINE_KEY)
        counts = self.counts.rows()
        erased = self.erased_contacts
        self.dirty.clear()
        self.dirty_steps.clear()
        self.new_lines = []
        self.erased_contacts = set()
        return board_rows, audit_rows, ledger_rows, lines, erased, counts


@dataclass(frozen=True)
class AuditRow:
    """A case's procedural audit score with its deductions."""

    ref: str
    unit_code: str
    score: int
    deductions: list[str]
    state: str

    def explained(self) -> list[str]:
        """Each deduction with its points and meaning."""
        return [f"-{DEDUCTIONS[c].points} {DEDUCTIONS[c].zh} ({DEDUCTIONS[c].en})" for c in self.deductions]


def audit_of(views: ViewStore, ref: str) -> AuditRow | None:
    """One case's audit score."""
    rows = views.query(
        f"SELECT case_ref, unit_code, score, deductions, state FROM {AUDIT_TABLE} WHERE case_ref = ?",
        (ref,),
    )
    if not rows:
        return None
    r = rows[0]
    return AuditRow(r[0], r[1], int(r[2]), json.loads(r[3]), r[4])
