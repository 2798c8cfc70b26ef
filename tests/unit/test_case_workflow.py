"""The case workflow of DESIGN §4, move by move, on the ``Case`` aggregate alone.

The expectations below are written out by hand from DESIGN §4 and §5, not read from
``domain/workflow.py``: a test that derives its answers from the code under test
cannot disagree with it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

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
from domain.workflow import CaseState, CloseOutcome, SlaStep, SupervisionTarget

S = CaseState

START = datetime(2021, 11, 1, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
REF = "PJ-20211101-CAO01"
UNIT = UUID("00000000-0000-4000-8000-000000000001")
OFFICER = UUID("00000000-0000-4000-8000-000000000002")
CONTACT = Contact(citizen_ref="cit-000000001", phone="13800138000", name="曹")

STEP = timedelta(minutes=7)  # between two moves, unless a test says otherwise
SYSTEM = ("system", Role.SYSTEM, Channel.SYSTEM)
HEAD = ("100101", Role.UNIT_HEAD, Channel.API)
SUPERVISOR = ("dc-wang", Role.SUPERVISOR, Channel.API)

#: Every attribute a refused move must leave untouched.
STATE_ATTRIBUTES = (
    "state", "round", "version", "flagged_at", "flag_reason", "callback_satisfied",
    "failed_attempts", "rectification_due", "running", "warned", "breached", "outcome",
    "resolution", "citizen_accepted", "closed_at", "accountability", "commendations", "contact",
)


def snapshot(case: Case) -> dict[str, Any]:
    """A deep copy of what the case knows, to compare before and after a move."""
    return {name: copy.deepcopy(getattr(case, name)) for name in STATE_ATTRIBUTES}


class Story:
    """A fresh case and the moves made on it, each a little later than the one before."""

    def __init__(self, *, with_contact: bool = True) -> None:
        self.now = START
        self.sequence = 0
        self.case = Case(
            ref=REF,
            kind=CaseKind.COMPLAINT,
            intake=Channel.QR,
            unit_id=UNIT,
            officer_id=OFFICER,
            rating_id=None,
            summary="办事拖延 (delay at the window)",
            contact=CONTACT if with_contact else None,
            meta=self.meta(SYSTEM, after=timedelta(0)),
        )

    def meta(
        self, who: tuple[str, Role, Channel] = SUPERVISOR, *, after: timedelta = STEP
    ) -> Meta:
        """The metadata of the next move, ``after`` the previous one."""
        self.now += after
        self.sequence += 1
        actor, role, channel = who
        return Meta(actor, role, self.now, channel, f"corr-{self.sequence}")

    def new_events(self) -> list[Any]:
        """The events triggered since the last call."""
        return list(self.case.collect_events())

    # -- the moves, with ordinary arguments ----------------------------------------------

    def push(self) -> None:
        self.case.push(self.meta(SYSTEM))

    def contact(self) -> None:
        self.case.contact_citizen("phoned the citizen", self.meta(HEAD))

    def report(self) -> None:
        self.case.report_result("apologised; window hours extended", self.meta(HEAD))

    def callback(self, *, satisfied: bool = True) -> None:
        self.case.record_callback(satisfied, "reached the citizen", self.meta())

    def attempt(self) -> None:
        self.case.record_callback_attempt("no answer", self.meta())

    def supervise(self) -> None:
        self.case.supervise(SupervisionTarget.UNIT, "asked the unit for progress", self.meta())

    def flag(self) -> None:
        self.case.flag("repeated complaint", self.meta())

    def order(self, *, due_in: timedelta = timedelta(days=15)) -> None:
        meta = self.meta()
        self.case.order_rectification("fix the queue", meta.occurred_at + due_in, meta)

    def report_rectified(self) -> None:
        self.case.report_rectified("queue fixed", self.meta(HEAD))

    def verify(self, *, implemented: bool = True, new_due_in: timedelta | None = None) -> None:
        meta = self.meta()
        new_due = None if new_due_in is None else meta.occurred_at + new_due_in
        self.case.verify(implemented, "checked on the spot", new_due, meta)

    def close(self, *, citizen_accepted: bool | None = None) -> None:
        self.case.close("concluded", citizen_accepted, self.meta())

    def reopen(self, *, after: timedelta = STEP) -> None:
        self.case.reopen("the citizen came back", self.meta(after=after))

    def accountability(self) -> None:
        self.case.record_accountability(
            OFFICER, AccountabilityMeasure.CRITICISM_NOTICE, "通报批评", self.meta()
        )

    def commendation(self) -> None:
        self.case.record_commendation(CommendationKind.BANNER, OFFICER, None, "锦旗", self.meta())

    def warn(self, step: SlaStep, round_: int | None = None) -> None:
        round_ = self.case.round if round_ is None else round_
        self.case.record_sla_warning(step, round_, self.meta(SYSTEM))

    def breach(self, step: SlaStep, round_: int | None = None) -> None:
        round_ = self.case.round if round_ is None else round_
        self.case.record_sla_breach(step, round_, self.meta(SYSTEM))


# -- getting a fresh case to each state ---------------------------------------------------

def _contacted(story: Story) -> None:
    story.push()
    story.contact()


def _reported(story: Story) -> None:
    _contacted(story)
    story.report()


def _called_back(story: Story, *, satisfied: bool) -> None:
    _reported(story)
    story.callback(satisfied=satisfied)


def _rectifying(story: Story) -> None:
    _called_back(story, satisfied=False)
    story.order()


def _rectified(story: Story) -> None:
    _rectifying(story)
    story.report_rectified()


def _verified(story: Story) -> None:
    _rectified(story)
    story.verify(implemented=True)


def _not_reached(story: Story) -> None:
    _reported(story)
    for _ in range(3):
        story.attempt()


def _closed(story: Story) -> None:
    _called_back(story, satisfied=True)
    story.close(citizen_accepted=True)


#: name -> (does the citizen leave a contact, the moves, the state it must end in)
STARTS: dict[str, tuple[bool, Callable[[Story], None], CaseState]] = {
    "open": (True, lambda s: None, S.OPEN),
    "pushed": (True, Story.push, S.PUSHED),
    "contacted": (True, _contacted, S.CONTACTED),
    "reported": (True, _reported, S.REPORTED),
    "reported_not_callable": (False, _reported, S.REPORTED),
    "reported_not_reached": (True, _not_reached, S.REPORTED),
    "called_back_satisfied": (True, lambda s: _called_back(s, satisfied=True), S.CALLED_BACK),
    "called_back_not_satisfied": (
        True, lambda s: _called_back(s, satisfied=False), S.CALLED_BACK,
    ),
    "rectifying": (True, _rectifying, S.RECTIFYING),
    "rectified": (True, _rectified, S.RECTIFIED),
    "verified": (True, _verified, S.VERIFIED),
    "closed": (True, _closed, S.CLOSED),
}


def reach(start: str) -> Story:
    """A fresh case driven to ``start`` through public moves, with no pending events left."""
    with_contact, moves, expected = STARTS[start]
    story = Story(with_contact=with_contact)
    moves(story)
    assert story.case.state is expected, f"could not drive a case to {start}"
    story.new_events()
    return story


# -- the table of DESIGN §4 ---------------------------------------------------------------

#: The SLA step whose clock runs in each state (DESIGN §5), or None when none runs.
CLOCK_IN: dict[str, SlaStep | None] = {
    "open": SlaStep.PUSH,
    "pushed": SlaStep.CONTACT,
    "contacted": SlaStep.FEEDBACK,
    "reported": SlaStep.CALLBACK,
    "reported_not_callable": None,  # no callback to wait for
    "reported_not_reached": SlaStep.CALLBACK,
    "called_back_satisfied": None,
    "called_back_not_satisfied": None,
    "rectifying": SlaStep.RECTIFICATION,
    "rectified": SlaStep.VERIFICATION,
    "verified": None,
    "closed": None,
}


def _sla_step(story: Story, start: str) -> SlaStep:
    # Where no clock runs, try one that ran earlier: the refusal is what is tested.
    return CLOCK_IN[start] or SlaStep.FEEDBACK


#: move -> (the name a refusal gives it, how to make it, the event it triggers)
MOVES: dict[str, tuple[str, Callable[[Story, str], None], str]] = {
    "push": ("push", lambda s, _: s.push(), "Pushed"),
    "contact": ("contact", lambda s, _: s.contact(), "CitizenContacted"),
    "report": ("report", lambda s, _: s.report(), "ResultReported"),
    "callback": ("callback", lambda s, _: s.callback(satisfied=True), "CallbackRecorded"),
    "callback_attempt": ("callback_attempt", lambda s, _: s.attempt(), "CallbackAttemptFailed"),
    "supervise": ("supervise", lambda s, _: s.supervise(), "Supervised"),
    "flag": ("flag", lambda s, _: s.flag(), "Flagged"),
    "order_rectification": (
        "order_rectification", lambda s, _: s.order(), "RectificationOrdered",
    ),
    "report_rectified": (
        "report_rectified", lambda s, _: s.report_rectified(), "RectificationReported",
    ),
    "verify_ok": ("verify", lambda s, _: s.verify(implemented=True), "Verified"),
    "verify_not_ok": (
        "verify",
        lambda s, _: s.verify(implemented=False, new_due_in=timedelta(days=7)),
        "Verified",
    ),
    "close": ("close", lambda s, _: s.close(), "Closed"),
    "reopen": ("reopen", lambda s, _: s.reopen(), "Reopened"),
    "accountability": ("accountability", lambda s, _: s.accountability(), "AccountabilityRecorded"),
    "commendation": ("commendation", lambda s, _: s.commendation(), "CommendationRecorded"),
    "sla_warning": ("sla_warning", lambda s, start: s.warn(_sla_step(s, start)), "SlaWarned"),
    "sla_breach": ("sla_breach", lambda s, start: s.breach(_sla_step(s, start)), "SlaBreached"),
}

#: Records allowed in any open state, and in any state at all; they do not move the case.
_ANY_OPEN = ("callback_attempt", "supervise", "flag")
_ANY = ("accountability", "commendation")
_SLA = ("sla_warning", "sla_breach")


def _stays(state: CaseState, *moves: str) -> dict[str, CaseState]:
    return dict.fromkeys(moves, state)


#: start -> {legal move: resulting state}; every move not listed is illegal there.
LEGAL: dict[str, dict[str, CaseState]] = {
    "open": {"push": S.PUSHED, **_stays(S.OPEN, *_ANY_OPEN, *_ANY, *_SLA)},
    "pushed": {"contact": S.CONTACTED, **_stays(S.PUSHED, *_ANY_OPEN, *_ANY, *_SLA)},
    "contacted": {"report": S.REPORTED, **_stays(S.CONTACTED, *_ANY_OPEN, *_ANY, *_SLA)},
    "reported": {
        "callback": S.CALLED_BACK,
        **_stays(S.REPORTED, *_ANY_OPEN, *_ANY, *_SLA),
    },
    "reported_not_callable": {
        "close": S.CLOSED,
        "order_rectification": S.RECTIFYING,
        **_stays(S.REPORTED, "supervise", "flag", *_ANY),
    },
    "reported_not_reached": {
        "callback": S.CALLED_BACK,
        "close": S.CLOSED,
        "order_rectification": S.RECTIFYING,
        **_stays(S.REPORTED, *_ANY_OPEN, *_ANY, *_SLA),
    },
    "called_back_satisfied": {
        "order_rectification": S.RECTIFYING,
        "close": S.CLOSED,
        **_stays(S.CALLED_BACK, *_ANY_OPEN, *_ANY),
    },
    "called_back_not_satisfied": {
        "order_rectification": S.RECTIFYING,
        "reopen": S.PUSHED,
        **_stays(S.CALLED_BACK, *_ANY_OPEN, *_ANY),
    },
    "rectifying": {
        "report_rectified": S.RECTIFIED,
        **_stays(S.RECTIFYING, *_ANY_OPEN, *_ANY, *_SLA),
    },
    "rectified": {
        "verify_ok": S.VERIFIED,
        "verify_not_ok": S.RECTIFYING,
        **_stays(S.RECTIFIED, *_ANY_OPEN, *_ANY, *_SLA),
    },
    "verified": {"close": S.CLOSED, **_stays(S.VERIFIED, *_ANY_OPEN, *_ANY)},
    "closed": {"reopen": S.PUSHED, **_stays(S.CLOSED, *_ANY)},
}

LEGAL_PAIRS = [
    pytest.param(start, move, id=f"{start}-{move}")
    for start in STARTS
    for move in MOVES
    if move in LEGAL[start]
]
ILLEGAL_PAIRS = [
    pytest.param(start, move, id=f"{start}-{move}")
    for start in STARTS
    for move in MOVES
    if move not in LEGAL[start]
]


def test_the_table_covers_every_state_and_every_move() -> None:
    assert {state for _, _, state in STARTS.values()} == set(CaseState)
    assert len(LEGAL_PAIRS) + len(ILLEGAL_PAIRS) == len(STARTS) * len(MOVES)
    assert all(set(moves) <= set(MOVES) for moves in LEGAL.values())


@pytest.mark.parametrize(("start", "move"), LEGAL_PAIRS)
def test_a_legal_move_takes_the_case_where_design_4_says(start: str, move: str) -> None:
    story = reach(start)
    _, make, event_name = MOVES[move]

    make(story, start)

    assert story.case.state is LEGAL[start][move]
    events = story.new_events()
    assert events, "a legal move must leave an event"
    assert type(events[0]).__name__ == event_name


@pytest.mark.parametrize(("start", "move"), ILLEGAL_PAIRS)
def test_an_illegal_move_is_refused_naming_case_state_and_move_and_writes_nothing(
    start: str, move: str
) -> None:
    story = reach(start)
    label, make, _ = MOVES[move]
    state = STARTS[start][2].value
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError) as refused:
        make(story, start)

    message = str(refused.value)
    assert REF in message
    assert re.search(rf"\b{state}\b", message), message
    assert re.search(rf"\b{label}\b", message), message
    assert (refused.value.ref, refused.value.state, refused.value.move) == (REF, state, label)
    assert story.case.pending_events == []
    assert snapshot(story.case) == before


# -- callbacks need a contact -------------------------------------------------------------

def test_a_case_without_contact_cannot_be_called_back() -> None:
    story = reach("reported_not_callable")

    with pytest.raises(IllegalMoveError, match="callback"):
        story.callback()

    assert story.case.state is S.REPORTED
    assert story.case.pending_events == []


@pytest.mark.parametrize("start", ["pushed", "contacted", "reported_not_callable"])
def test_a_case_without_contact_cannot_record_a_callback_attempt(start: str) -> None:
    story = Story(with_contact=False)
    story.push()
    if start != "pushed":
        story.contact()
    if start == "reported_not_callable":
        story.report()
    story.new_events()

    with pytest.raises(IllegalMoveError, match="callback_attempt"):
        story.attempt()

    assert story.case.failed_attempts == 0
    assert story.case.pending_events == []


def test_failed_callback_attempts_are_counted() -> None:
    story = reach("reported")

    story.attempt()
    story.attempt()

    assert story.case.failed_attempts == 2
    assert story.case.state is S.REPORTED


def test_a_citizen_reached_after_three_failed_attempts_can_still_be_called_back() -> None:
    story = reach("reported_not_reached")

    story.callback(satisfied=False)

    assert story.case.state is S.CALLED_BACK
    assert story.case.callback_satisfied is False


def test_attempts_made_before_the_result_was_reported_do_not_count_towards_closing_unreached() -> None:
    story = reach("pushed")
    for _ in range(3):
        story.attempt()
    story.contact()
    story.report()
    story.new_events()

    assert story.case.failed_attempts == 0
    with pytest.raises(IllegalMoveError, match="0 of 3 attempts failed"):
        story.close()
    assert story.case.state is S.REPORTED


# -- closing ------------------------------------------------------------------------------

def test_a_reported_case_without_contact_closes_as_not_callable() -> None:
    story = reach("reported_not_callable")

    story.close(citizen_accepted=None)

    assert story.case.state is S.CLOSED
    assert story.case.outcome is CloseOutcome.NOT_CALLABLE
    assert story.case.citizen_accepted is None
    assert story.case.closed_at == story.now
    assert story.case.running == {}


def test_a_reported_case_closes_as_not_reached_after_three_failed_attempts() -> None:
    story = reach("reported_not_reached")

    story.close(citizen_accepted=None)

    assert story.case.state is S.CLOSED
    assert story.case.outcome is CloseOutcome.NOT_REACHED


@pytest.mark.parametrize("failed", [0, 1, 2])
def test_a_reported_callable_case_cannot_close_before_three_failed_attempts(failed: int) -> None:
    story = reach("reported")
    for _ in range(failed):
        story.attempt()
    story.new_events()

    with pytest.raises(IllegalMoveError, match="close"):
        story.close()

    assert story.case.state is S.REPORTED
    assert story.case.pending_events == []


@pytest.mark.parametrize("start", ["reported_not_callable", "reported_not_reached"])
@pytest.mark.parametrize("accepted", [True, False])
def test_a_case_closed_without_reaching_the_citizen_cannot_say_the_citizen_accepted(
    start: str, accepted: bool
) -> None:
    story = reach(start)
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError, match="close"):
        story.close(citizen_accepted=accepted)

    assert story.case.pending_events == []
    assert snapshot(story.case) == before


@pytest.mark.parametrize("accepted", [True, False, None])
def test_a_satisfied_callback_closes_as_resolved_keeping_the_citizens_answer(
    accepted: bool | None,
) -> None:
    story = reach("called_back_satisfied")

    story.close(citizen_accepted=accepted)

    assert story.case.state is S.CLOSED
    assert story.case.outcome is CloseOutcome.RESOLVED
    assert story.case.citizen_accepted is accepted
    assert story.case.resolution == "concluded"


def test_a_verified_rectification_closes_as_resolved() -> None:
    story = reach("verified")

    story.close(citizen_accepted=True)

    assert story.case.outcome is CloseOutcome.RESOLVED
    assert story.case.citizen_accepted is True


def test_a_case_called_back_unsatisfied_cannot_be_closed() -> None:
    story = reach("called_back_not_satisfied")

    with pytest.raises(IllegalMoveError, match="called_back"):
        story.close(citizen_accepted=None)

    assert story.case.state is S.CALLED_BACK
    assert story.case.pending_events == []


# -- rectification and verification ------------------------------------------------------

def test_rectification_from_reported_is_refused_while_a_callback_is_still_possible() -> None:
    story = reach("reported")
    story.attempt()
    story.attempt()
    story.new_events()

    with pytest.raises(IllegalMoveError, match="order_rectification"):
        story.order()

    assert story.case.state is S.REPORTED
    assert story.case.rectification_due is None
    assert story.case.pending_events == []


@pytest.mark.parametrize("start", ["reported_not_callable", "reported_not_reached"])
def test_rectification_from_reported_is_ordered_when_the_callback_is_impossible(start: str) -> None:
    story = reach(start)

    story.order(due_in=timedelta(days=10))

    assert story.case.state is S.RECTIFYING
    assert story.case.rectification_due == story.now + timedelta(days=10)
    assert SlaStep.CALLBACK not in story.case.running
    assert story.case.running[SlaStep.RECTIFICATION] == story.now


@pytest.mark.parametrize("start", ["called_back_satisfied", "reported_not_callable"])
@pytest.mark.parametrize(
    "due_in",
    [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)],
    ids=["now", "1s-ago", "3d-ago"],
)
def test_a_rectification_due_date_must_be_in_the_future(start: str, due_in: timedelta) -> None:
    story = reach(start)
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError, match="order_rectification"):
        story.order(due_in=due_in)

    assert story.case.pending_events == []
    assert snapshot(story.case) == before


@pytest.mark.parametrize(
    "new_due_in",
    [None, timedelta(0), timedelta(hours=-1)],
    ids=["no-due-date", "due-now", "due-in-the-past"],
)
def test_a_failed_verification_needs_a_future_due_date(new_due_in: timedelta | None) -> None:
    story = reach("rectified")
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError, match="verify"):
        story.verify(implemented=False, new_due_in=new_due_in)

    assert story.case.pending_events == []
    assert snapshot(story.case) == before


def test_a_failed_verification_sends_the_case_back_to_rectifying_with_the_new_due_date() -> None:
    story = reach("rectified")

    story.verify(implemented=False, new_due_in=timedelta(days=5))
    verified_at = story.now

    assert story.case.state is S.RECTIFYING
    assert story.case.rectification_due == verified_at + timedelta(days=5)
    assert story.case.running == {SlaStep.RECTIFICATION: verified_at}
    story.report_rectified()
    story.verify(implemented=True)
    assert story.case.state is S.VERIFIED


def test_a_successful_verification_takes_no_new_due_date() -> None:
    story = reach("rectified")

    with pytest.raises(IllegalMoveError, match="verify"):
        story.verify(implemented=True, new_due_in=timedelta(days=5))

    assert story.case.state is S.RECTIFIED
    assert story.case.pending_events == []


# -- reopening ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "after", [timedelta(minutes=1), timedelta(days=29, hours=23)], ids=["at-once", "day-29"]
)
def test_a_closed_case_can_be_reopened_within_30_days(after: timedelta) -> None:
    story = reach("closed")

    story.reopen(after=after)

    assert story.case.state is S.PUSHED
    assert story.case.round == 2


@pytest.mark.parametrize(
    "after",
    [timedelta(days=30, minutes=1), timedelta(days=90)],
    ids=["day-30-and-a-minute", "day-90"],
)
def test_a_closed_case_cannot_be_reopened_after_30_days(after: timedelta) -> None:
    story = reach("closed")
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError, match="reopen"):
        story.reopen(after=after)

    assert story.case.pending_events == []
    assert snapshot(story.case) == before


def test_a_satisfied_callback_cannot_be_reopened() -> None:
    story = reach("called_back_satisfied")

    with pytest.raises(IllegalMoveError, match="reopen"):
        story.reopen()

    assert story.case.round == 1
    assert story.case.pending_events == []


@pytest.mark.parametrize("start", ["called_back_not_satisfied", "closed"])
def test_a_reopen_starts_round_two_at_pushed_with_contact_and_feedback_clocks_running(
    start: str,
) -> None:
    story = reach(start)

    story.reopen()
    reopened_at = story.now

    case = story.case
    assert (case.state, case.round) == (S.PUSHED, 2)
    assert case.running == {SlaStep.CONTACT: reopened_at, SlaStep.FEEDBACK: reopened_at}
    assert case.callback_satisfied is None
    assert case.failed_attempts == 0
    assert (case.outcome, case.resolution, case.citizen_accepted, case.closed_at) == (
        None, None, None, None,
    )
    assert [type(e).__name__ for e in story.new_events()] == ["Reopened"]


def test_failed_attempts_of_round_one_do_not_count_in_round_two() -> None:
    story = reach("reported_not_reached")
    story.callback(satisfied=False)
    story.reopen()
    story.contact()
    story.report()
    story.new_events()

    with pytest.raises(IllegalMoveError, match="close"):
        story.close()

    assert story.case.failed_attempts == 0


# -- flagging, supervision, accountability, commendation ---------------------------------

def test_flagging_records_when_and_why() -> None:
    story = reach("pushed")

    story.flag()

    assert story.case.flagged_at == story.now
    assert story.case.flag_reason == "repeated complaint"


def test_a_case_cannot_be_flagged_twice() -> None:
    story = reach("contacted")
    story.flag()
    story.new_events()
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError, match="flag"):
        story.flag()

    assert story.case.pending_events == []
    assert snapshot(story.case) == before


@pytest.mark.parametrize("start", list(STARTS))
def test_accountability_and_commendation_are_accepted_in_every_state(start: str) -> None:
    story = reach(start)
    state = story.case.state

    story.accountability()
    story.commendation()

    assert story.case.state is state
    assert story.case.accountability == [(OFFICER, AccountabilityMeasure.CRITICISM_NOTICE)]
    assert story.case.commendations == [CommendationKind.BANNER]
    assert [type(e).__name__ for e in story.new_events()] == [
        "AccountabilityRecorded", "CommendationRecorded",
    ]


def test_the_cao_case_can_be_told_from_its_events() -> None:
    story = Story()
    story.push()
    story.contact()
    story.report()
    story.callback(satisfied=False)
    story.flag()
    story.supervise()
    story.reopen()
    story.contact()
    story.report()
    story.callback(satisfied=True)
    story.close(citizen_accepted=True)
    story.accountability()
    story.commendation()

    assert [type(e).__name__ for e in story.new_events()] == [
        "Opened", "Pushed", "CitizenContacted", "ResultReported", "CallbackRecorded",
        "Flagged", "Supervised", "Reopened", "CitizenContacted", "ResultReported",
        "CallbackRecorded", "Closed", "AccountabilityRecorded", "CommendationRecorded",
    ]
    assert story.case.outcome is CloseOutcome.RESOLVED
    assert story.case.round == 2


# -- SLA warnings and breaches ------------------------------------------------------------

#: The steps whose clock runs in each state (DESIGN §5), written out by hand.
RUNNING: dict[str, set[SlaStep]] = {
    "open": {SlaStep.PUSH},
    "pushed": {SlaStep.CONTACT, SlaStep.FEEDBACK},
    "contacted": {SlaStep.FEEDBACK},
    "reported": {SlaStep.CALLBACK},
    "reported_not_callable": set(),
    "reported_not_reached": {SlaStep.CALLBACK},
    "called_back_satisfied": set(),
    "called_back_not_satisfied": set(),
    "rectifying": {SlaStep.RECTIFICATION},
    "rectified": {SlaStep.VERIFICATION},
    "verified": set(),
    "closed": set(),
}
SLA_PAIRS = [
    pytest.param(start, step, id=f"{start}-{step.value}") for start in STARTS for step in SlaStep
]


@pytest.mark.parametrize(("start", "step"), SLA_PAIRS)
def test_an_sla_warning_is_accepted_only_for_a_step_whose_clock_runs(
    start: str, step: SlaStep
) -> None:
    story = reach(start)

    if step in RUNNING[start]:
        story.warn(step)
        assert (step, 1) in story.case.warned
        assert [type(e).__name__ for e in story.new_events()] == ["SlaWarned"]
    else:
        before = snapshot(story.case)
        with pytest.raises(IllegalMoveError, match="sla_warning"):
            story.warn(step)
        assert story.case.pending_events == []
        assert snapshot(story.case) == before


@pytest.mark.parametrize(("start", "step"), SLA_PAIRS)
def test_an_sla_breach_is_accepted_only_for_a_step_whose_clock_runs(
    start: str, step: SlaStep
) -> None:
    story = reach(start)

    if step in RUNNING[start]:
        story.breach(step)
        assert (step, 1) in story.case.breached
    else:
        before = snapshot(story.case)
        with pytest.raises(IllegalMoveError, match="sla_breach"):
            story.breach(step)
        assert story.case.pending_events == []
        assert snapshot(story.case) == before


@pytest.mark.parametrize("record", ["warn", "breach"])
def test_an_sla_event_fires_at_most_once_per_step_and_round(record: str) -> None:
    story = reach("pushed")
    getattr(story, record)(SlaStep.CONTACT)
    story.new_events()
    before = snapshot(story.case)

    with pytest.raises(IllegalMoveError, match=r"sla_(warning|breach)"):
        getattr(story, record)(SlaStep.CONTACT)

    assert story.case.pending_events == []
    assert snapshot(story.case) == before


@pytest.mark.parametrize("record", ["warn", "breach"])
@pytest.mark.parametrize("round_", [0, 2, 3])
def test_an_sla_event_for_another_round_is_refused(record: str, round_: int) -> None:
    story = reach("pushed")

    with pytest.raises(IllegalMoveError, match=r"sla_(warning|breach)"):
        getattr(story, record)(SlaStep.CONTACT, round_)

    assert story.case.warned == set()
    assert story.case.breached == set()
    assert story.case.pending_events == []


def test_a_warning_after_a_breach_is_refused() -> None:
    story = reach("pushed")
    story.breach(SlaStep.CONTACT)
    story.new_events()

    with pytest.raises(IllegalMoveError, match="sla_warning"):
        story.warn(SlaStep.CONTACT)

    assert story.case.warned == set()
    assert story.case.pending_events == []


def test_a_breach_after_a_warning_is_accepted() -> None:
    story = reach("pushed")
    story.warn(SlaStep.CONTACT)

    story.breach(SlaStep.CONTACT)

    assert story.case.warned == {(SlaStep.CONTACT, 1)}
    assert story.case.breached == {(SlaStep.CONTACT, 1)}


@pytest.mark.parametrize("start", ["pushed", "contacted"])
def test_a_feedback_breach_flags_the_case_with_the_system_as_actor(start: str) -> None:
    story = reach(start)

    story.breach(SlaStep.FEEDBACK)

    events = story.new_events()
    assert [type(e).__name__ for e in events] == ["SlaBreached", "Flagged"]
    flagged = events[1]
    assert (flagged.meta.actor, flagged.meta.role) == ("system", Role.SYSTEM)
    assert story.case.flagged_at == story.now
    assert story.case.flag_reason


def test_a_feedback_breach_leaves_an_already_flagged_case_as_it_was_flagged() -> None:
    story = reach("contacted")
    story.flag()
    flagged_at = story.now
    story.new_events()

    story.breach(SlaStep.FEEDBACK)

    assert [type(e).__name__ for e in story.new_events()] == ["SlaBreached"]
    assert story.case.flagged_at == flagged_at
    assert story.case.flag_reason == "repeated complaint"


@pytest.mark.parametrize(
    ("start", "step"),
    [("open", SlaStep.PUSH), ("pushed", SlaStep.CONTACT), ("reported", SlaStep.CALLBACK),
     ("rectifying", SlaStep.RECTIFICATION), ("rectified", SlaStep.VERIFICATION)],
)
def test_a_breach_of_another_step_does_not_flag_the_case(start: str, step: SlaStep) -> None:
    story = reach(start)

    story.breach(step)

    assert [type(e).__name__ for e in story.new_events()] == ["SlaBreached"]
    assert story.case.flagged_at is None


@pytest.mark.parametrize("step", [SlaStep.CONTACT, SlaStep.FEEDBACK])
def test_after_a_reopen_the_same_step_can_be_warned_again_in_round_two(step: SlaStep) -> None:
    story = reach("pushed")
    story.warn(step)
    story.contact()
    story.report()
    story.callback(satisfied=False)
    story.reopen()
    story.new_events()

    with pytest.raises(IllegalMoveError, match="sla_warning"):
        story.warn(step, 1)
    story.warn(step, 2)

    assert story.case.warned == {(step, 1), (step, 2)}
    assert [type(e).__name__ for e in story.new_events()] == ["SlaWarned"]
