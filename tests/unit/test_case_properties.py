"""Random walks through the case workflow: edges, event metadata and replay (DESIGN §3-§4).

A state machine makes random moves with random arguments, legal or not. After each
move the case must have moved along an edge of DESIGN §4 (written out by hand below),
or refused the move and written nothing; every event must carry its metadata; and the
case rebuilt from its stored events must equal the live one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Mapper
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.application import PingjingApp
from domain.case import Case
from domain.errors import IllegalMoveError
from domain.values import (
    AccountabilityMeasure,
    CaseKind,
    Channel,
    CommendationKind,
    Contact,
    Meta,
    Role,
)
from domain.workflow import CaseState, SlaStep, SupervisionTarget

S = CaseState

START = datetime(2021, 9, 16, 2, 0, tzinfo=UTC)
UNIT = UUID("00000000-0000-4000-8000-000000000001")
OFFICER = UUID("00000000-0000-4000-8000-000000000002")
REOPEN_WINDOW = timedelta(days=30)

_OPEN = [s for s in CaseState if s is not S.CLOSED]
_LOOPS_IN_OPEN = {(s, s) for s in _OPEN}
_LOOPS_EVERYWHERE = {(s, s) for s in CaseState}

#: move -> the (from, to) pairs DESIGN §4 allows it; records that move nothing are self-loops.
EDGES_BY_MOVE: dict[str, set[tuple[CaseState, CaseState]]] = {
    "push": {(S.OPEN, S.PUSHED)},
    "contact": {(S.PUSHED, S.CONTACTED)},
    "report": {(S.CONTACTED, S.REPORTED)},
    "callback": {(S.REPORTED, S.CALLED_BACK)},
    "callback_attempt": _LOOPS_IN_OPEN,
    "supervise": _LOOPS_IN_OPEN,
    "flag": _LOOPS_IN_OPEN,
    "order_rectification": {(S.CALLED_BACK, S.RECTIFYING), (S.REPORTED, S.RECTIFYING)},
    "report_rectified": {(S.RECTIFYING, S.RECTIFIED)},
    "verify": {(S.RECTIFIED, S.VERIFIED), (S.RECTIFIED, S.RECTIFYING)},
    "close": {(S.CALLED_BACK, S.CLOSED), (S.VERIFIED, S.CLOSED), (S.REPORTED, S.CLOSED)},
    "reopen": {(S.CALLED_BACK, S.PUSHED), (S.CLOSED, S.PUSHED)},
    "accountability": _LOOPS_EVERYWHERE,
    "commendation": _LOOPS_EVERYWHERE,
    "sla_warning": _LOOPS_IN_OPEN,
    "sla_breach": _LOOPS_IN_OPEN,
}
#: Every edge of the DESIGN §4 diagram, self-loops included.
EDGES = set().union(*EDGES_BY_MOVE.values())

#: What the live and the rebuilt case must agree on.
COMPARED = (
    "id", "version", "ref", "kind", "unit_id", "officer_id", "opened_at",
    "state", "round", "flagged_at", "flag_reason", "callback_satisfied", "failed_attempts",
    "rectification_due", "running", "warned", "breached", "outcome", "resolution",
    "citizen_accepted", "closed_at", "accountability", "commendations", "contact",
)


def snapshot(case: Case) -> dict[str, Any]:
    """A deep copy of the compared attributes."""
    return {name: copy.deepcopy(getattr(case, name)) for name in COMPARED}


@cache
def mapper() -> Mapper[UUID]:
    """The application's mapper, with the domain's transcodings, on in-memory storage."""
    return PingjingApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


# -- strategies ---------------------------------------------------------------------------

ZONES = [UTC, ZoneInfo("Asia/Shanghai"), timezone(timedelta(hours=-5))]
words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
gaps = st.one_of(
    st.integers(1, 600).map(lambda m: timedelta(minutes=m)),
    st.integers(25, 35).map(lambda d: timedelta(days=d)),
    st.just(REOPEN_WINDOW),
)
#: Relative to the move's own time: sometimes now or past (illegal), mostly future.
offsets = st.one_of(
    st.just(timedelta(0)),
    st.integers(-3 * 24 * 60, 20 * 24 * 60).map(lambda m: timedelta(minutes=m)),
)


@dataclass(frozen=True)
class MetaDraft:
    """Metadata for a move whose time is only known once the machine picks it."""

    actor: str
    role: Role
    channel: Channel
    corr: str
    gap: timedelta
    zone: tzinfo


drafts = st.builds(
    MetaDraft,
    actor=words,
    role=st.sampled_from(Role),
    channel=st.sampled_from(Channel),
    corr=words,
    gap=gaps,
    zone=st.sampled_from(ZONES),
)

rounds = st.sampled_from([0, 0, 0, -1, 1])  # mostly the current round

#: move -> the strategies of its arguments
ARGUMENTS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "push": {"draft": drafts},
    "contact": {"draft": drafts, "note": words},
    "report": {"draft": drafts, "result": words},
    "callback": {"draft": drafts, "satisfied": st.booleans()},
    "callback_attempt": {"draft": drafts},
    "supervise": {"draft": drafts, "whom": st.sampled_from(SupervisionTarget)},
    "flag": {"draft": drafts, "reason": words},
    "order_rectification": {"draft": drafts, "due_in": offsets},
    "report_rectified": {"draft": drafts},
    "verify": {"draft": drafts, "implemented": st.booleans(), "new_due_in": st.none() | offsets},
    "close": {"draft": drafts, "accepted": st.none() | st.booleans()},
    "reopen": {"draft": drafts},
    "accountability": {"draft": drafts, "measure": st.sampled_from(AccountabilityMeasure)},
    "commendation": {
        "draft": drafts, "kind": st.sampled_from(CommendationKind), "to_unit": st.booleans(),
    },
    "sla_warning": {"draft": drafts, "step": st.sampled_from(SlaStep), "shift": rounds},
    "sla_breach": {"draft": drafts, "step": st.sampled_from(SlaStep), "shift": rounds},
}


class CaseWalk(RuleBasedStateMachine):
    """One case, moved at random; each refusal must leave it untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.stored: list[Any] = []
        self.case: Case

    def _meta(self, draft: MetaDraft) -> Meta:
        self.now += draft.gap
        return Meta(
            draft.actor, draft.role, self.now.astimezone(draft.zone), draft.channel, draft.corr
        )

    def _keep(self) -> None:
        """Check the new events' metadata, then keep them as they come back from storage."""
        for event in self.case.collect_events():
            meta = event.meta
            assert isinstance(meta, Meta)
            assert meta.actor
            assert isinstance(meta.role, Role)
            assert meta.occurred_at.tzinfo is not None
            assert meta.occurred_at.utcoffset() is not None
            assert isinstance(meta.channel, Channel)
            assert meta.correlation_id
            stored = mapper().to_domain_event(mapper().to_stored_event(event))
            assert stored.meta == meta
            self.stored.append(stored)

    def _try(
        self, move: str, act: Any, *, must_succeed: bool = False, must_fail: bool = False
    ) -> None:
        """Make a move; check it moved along an edge, or was refused and wrote nothing.

        ``must_fail`` is a guard of the brief that the caller knows is broken; a move with
        no edge out of the current state must fail too.
        """
        before = snapshot(self.case)
        must_fail = must_fail or all(a is not before["state"] for a, _ in EDGES_BY_MOVE[move])
        refusal: IllegalMoveError | None = None
        try:
            act()
        except IllegalMoveError as error:
            refusal = error
        assert refusal is not None or not must_fail, f"{move} accepted in {before['state']}"
        if refusal is not None:
            assert not must_succeed, f"{move} refused: {refusal}"
            assert self.case.ref in str(refusal)
            assert before["state"].value in str(refusal)
            assert self.case.pending_events == []
            assert snapshot(self.case) == before
            return
        assert (before["state"], self.case.state) in EDGES_BY_MOVE[move], (
            f"{move} took the case from {before['state']} to {self.case.state}"
        )
        assert self.case.pending_events, f"{move} succeeded without an event"
        self._keep()

    @initialize(draft=drafts, with_contact=st.booleans(), kind=st.sampled_from(CaseKind))
    def open_case(self, draft: MetaDraft, with_contact: bool, kind: CaseKind) -> None:
        contact = Contact("cit-000000001", "13800138000", None) if with_contact else None
        self.case = Case(
            ref="PJ-20210916-AB123", kind=kind, intake=Channel.QR, unit_id=UNIT,
            officer_id=OFFICER, rating_id=None, summary="s", contact=contact,
            meta=self._meta(draft),
        )
        assert self.case.state is S.OPEN
        self._keep()

    # -- the moves, with any arguments (see ARGUMENTS) ----------------------------------

    def do_push(self, draft: MetaDraft) -> None:
        self._try("push", lambda: self.case.push(self._meta(draft)))

    def do_contact(self, draft: MetaDraft, note: str) -> None:
        self._try("contact", lambda: self.case.contact_citizen(note, self._meta(draft)))

    def do_report(self, draft: MetaDraft, result: str) -> None:
        self._try("report", lambda: self.case.report_result(result, self._meta(draft)))

    def do_callback(self, draft: MetaDraft, satisfied: bool) -> None:
        self._try(
            "callback",
            lambda: self.case.record_callback(satisfied, "n", self._meta(draft)),
            must_fail=self.case.contact is None,
        )

    def do_callback_attempt(self, draft: MetaDraft) -> None:
        self._try(
            "callback_attempt",
            lambda: self.case.record_callback_attempt("n", self._meta(draft)),
            must_fail=self.case.contact is None,
        )

    def do_supervise(self, draft: MetaDraft, whom: SupervisionTarget) -> None:
        self._try("supervise", lambda: self.case.supervise(whom, "n", self._meta(draft)))

    def do_flag(self, draft: MetaDraft, reason: str) -> None:
        self._try(
            "flag",
            lambda: self.case.flag(reason, self._meta(draft)),
            must_fail=self.case.flagged_at is not None,
        )

    def do_order_rectification(self, draft: MetaDraft, due_in: timedelta) -> None:
        def act() -> None:
            meta = self._meta(draft)
            self.case.order_rectification("i", meta.occurred_at + due_in, meta)

        case = self.case
        callback_possible = case.contact is not None and case.failed_attempts < 3
        self._try(
            "order_rectification",
            act,
            must_fail=due_in <= timedelta(0) or (case.state is S.REPORTED and callback_possible),
        )

    def do_report_rectified(self, draft: MetaDraft) -> None:
        self._try("report_rectified", lambda: self.case.report_rectified("n", self._meta(draft)))

    def do_verify(self, draft: MetaDraft, implemented: bool, new_due_in: timedelta | None) -> None:
        def act() -> None:
            meta = self._meta(draft)
            new_due = None if new_due_in is None else meta.occurred_at + new_due_in
            self.case.verify(implemented, "n", new_due, meta)

        missing_due = new_due_in is None or new_due_in <= timedelta(0)
        bad_due = new_due_in is not None if implemented else missing_due
        self._try("verify", act, must_fail=bad_due)

    def do_close(self, draft: MetaDraft, accepted: bool | None) -> None:
        case = self.case
        callback_possible = case.contact is not None and case.failed_attempts < 3
        unsatisfied = case.state is S.CALLED_BACK and not case.callback_satisfied
        unreached = case.state is S.REPORTED and (callback_possible or accepted is not None)
        self._try(
            "close",
            lambda: case.close("r", accepted, self._meta(draft)),
            must_fail=unsatisfied or unreached,
        )

    def do_reopen(self, draft: MetaDraft) -> None:
        round_before = self.case.round
        self._try(
            "reopen",
            lambda: self.case.reopen("again", self._meta(draft)),
            must_fail=self.case.state is S.CALLED_BACK and bool(self.case.callback_satisfied),
        )
        if self.case.round != round_before:
            assert self.case.round == round_before + 1
            assert self.case.state is S.PUSHED

    def do_accountability(self, draft: MetaDraft, measure: AccountabilityMeasure) -> None:
        count = len(self.case.accountability)
        self._try(
            "accountability",
            lambda: self.case.record_accountability(OFFICER, measure, "n", self._meta(draft)),
            must_succeed=True,
        )
        assert self.case.accountability[count:] == [(OFFICER, measure)]

    def do_commendation(self, draft: MetaDraft, kind: CommendationKind, to_unit: bool) -> None:
        officer, unit = (None, UNIT) if to_unit else (OFFICER, None)
        self._try(
            "commendation",
            lambda: self.case.record_commendation(kind, officer, unit, "n", self._meta(draft)),
            must_succeed=True,
        )
        assert self.case.commendations[-1] is kind

    def do_sla_warning(self, draft: MetaDraft, step: SlaStep, shift: int) -> None:
        round_ = self.case.round + shift
        done = self.case.warned | self.case.breached
        self._try(
            "sla_warning",
            lambda: self.case.record_sla_warning(step, round_, self._meta(draft)),
            must_fail=shift != 0 or (step, round_) in done,
        )

    def do_sla_breach(self, draft: MetaDraft, step: SlaStep, shift: int) -> None:
        round_ = self.case.round + shift
        flagged_before = self.case.flagged_at is not None
        self._try(
            "sla_breach",
            lambda: self.case.record_sla_breach(step, round_, self._meta(draft)),
            must_fail=shift != 0 or (step, round_) in self.case.breached,
        )
        if (step, round_) in self.case.breached and step is SlaStep.FEEDBACK:
            assert self.case.flagged_at is not None
        if not flagged_before and self.case.flagged_at is not None:
            flagged = self.stored[-1]
            assert type(flagged).__name__ == "Flagged"
            assert flagged.meta == self.stored[-2].meta  # flagged by the breach itself

    # -- the rules -----------------------------------------------------------------------

    @rule(data=st.data())
    def any_move(self, data: st.DataObject) -> None:
        """Any move, with any arguments, legal or not."""
        move = data.draw(st.sampled_from(sorted(ARGUMENTS)), label="move")
        arguments = data.draw(st.fixed_dictionaries(ARGUMENTS[move]), label="arguments")
        getattr(self, f"do_{move}")(**arguments)

    @rule(draft=drafts, satisfied=st.booleans(), implemented=st.booleans())
    def next_step(self, draft: MetaDraft, satisfied: bool, implemented: bool) -> None:
        """The next step of DESIGN §4 with good arguments, so that deep states get visited."""
        case = self.case
        state = case.state
        if state is S.OPEN:
            self._try("push", lambda: case.push(self._meta(draft)), must_succeed=True)
        elif state is S.PUSHED:
            self._try(
                "contact", lambda: case.contact_citizen("n", self._meta(draft)), must_succeed=True
            )
        elif state is S.CONTACTED:
            self._try(
                "report", lambda: case.report_result("r", self._meta(draft)), must_succeed=True
            )
        elif state is S.REPORTED and case.contact is not None:
            self._try(
                "callback",
                lambda: case.record_callback(satisfied, "n", self._meta(draft)),
                must_succeed=True,
            )
        elif state is S.REPORTED and satisfied:
            self._try("close", lambda: case.close("r", None, self._meta(draft)), must_succeed=True)
        elif state is S.CALLED_BACK and case.callback_satisfied and satisfied:
            self._try("close", lambda: case.close("r", True, self._meta(draft)), must_succeed=True)
        elif state in {S.REPORTED, S.CALLED_BACK}:
            self.do_order_rectification(draft, timedelta(days=15))
            assert case.state is S.RECTIFYING
        elif state is S.RECTIFYING:
            self._try(
                "report_rectified",
                lambda: case.report_rectified("n", self._meta(draft)),
                must_succeed=True,
            )
        elif state is S.RECTIFIED:
            self.do_verify(draft, implemented, None if implemented else timedelta(days=5))
            assert case.state is (S.VERIFIED if implemented else S.RECTIFYING)
        elif state is S.VERIFIED:
            self._try("close", lambda: case.close("r", True, self._meta(draft)), must_succeed=True)
        else:
            closed_at = case.closed_at
            assert closed_at is not None
            self.do_reopen(draft)
            reopened = case.state is S.PUSHED
            assert reopened is (self.now - closed_at <= REOPEN_WINDOW)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def the_state_is_one_of_design_4(self) -> None:
        assert self.case.state in CaseState
        assert (self.case.state is S.CLOSED) == (self.case.closed_at is not None)
        assert (self.case.state is S.CLOSED) == (self.case.outcome is not None)
        if self.case.state is S.CLOSED:
            assert self.case.running == {}
        assert all(r <= self.case.round for _, r in self.case.warned | self.case.breached)

    @invariant()
    def the_stored_events_rebuild_the_same_case(self) -> None:
        rebuilt = None
        for event in self.stored:
            rebuilt = event.mutate(rebuilt)
        assert isinstance(rebuilt, Case)
        assert snapshot(rebuilt) == snapshot(self.case)


def test_the_allowed_edges_are_those_of_the_design_diagram() -> None:
    assert set(ARGUMENTS) == set(EDGES_BY_MOVE)
    moving = {(a, b) for a, b in EDGES if a is not b}
    assert moving == {
        (S.OPEN, S.PUSHED), (S.PUSHED, S.CONTACTED), (S.CONTACTED, S.REPORTED),
        (S.REPORTED, S.CALLED_BACK), (S.REPORTED, S.RECTIFYING), (S.REPORTED, S.CLOSED),
        (S.CALLED_BACK, S.RECTIFYING), (S.CALLED_BACK, S.CLOSED), (S.CALLED_BACK, S.PUSHED),
        (S.RECTIFYING, S.RECTIFIED), (S.RECTIFIED, S.VERIFIED), (S.RECTIFIED, S.RECTIFYING),
        (S.VERIFIED, S.CLOSED), (S.CLOSED, S.PUSHED),
    }


CaseWalk.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCaseWalk = CaseWalk.TestCase
