"""The case (督办件): a complaint, suggestion or dissatisfied rating worked to its end.

Public methods decide: they check the state, the round and the rules, and raise
:class:`IllegalMoveError` naming the case, its state and the move. Private ``@event``
methods only assign state; they run again on every replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import IllegalMoveError, RuleViolationError
from domain.ids import case_id
from domain.personal import AlreadyErasedError
from domain.values import (
    AccountabilityMeasure,
    CaseKind,
    Channel,
    CommendationKind,
    Contact,
    Meta,
)
from domain.workflow import (
    MAX_CALLBACK_ATTEMPTS,
    OPEN_STATES,
    REOPEN_WINDOW,
    CaseState,
    CloseOutcome,
    Move,
    SlaStep,
    SupervisionTarget,
)

S = CaseState


class Case(DomainAggregate):
    """A case and its rounds; a reopen starts a new round at PUSHED."""

    @staticmethod
    def create_id(ref: str, **_: object) -> UUID:
        """Cases are found by their reference."""
        return case_id(ref)

    @event("Opened")
    def __init__(
        self,
        ref: str,
        kind: CaseKind,
        intake: Channel,
        unit_id: UUID,
        officer_id: UUID | None,
        rating_id: UUID | None,
        summary: str,
        contact: Contact | None,
        meta: Meta,
    ) -> None:
        self.ref = ref
        self.kind = CaseKind(kind)
        self.intake = Channel(intake)
        self.unit_id = unit_id
        self.officer_id = officer_id
        self.rating_id = rating_id
        self.summary = summary
        self.contact = contact
        #: When the citizen's personal data were erased (the contact then has no phone or name).
        self.contact_erased_at: datetime | None = None
        self.state = S.OPEN
        self.round = 1
        self.opened_at = meta.occurred_at
        self.closed_at: datetime | None = None
        self.outcome: CloseOutcome | None = None
        self.resolution: str | None = None
        self.citizen_accepted: bool | None = None
        self.flagged_at: datetime | None = None
        self.flag_reason: str | None = None
        self.callback_satisfied: bool | None = None
        self.failed_attempts = 0
        self.rectification_due: datetime | None = None
        self.accountability: list[tuple[UUID, AccountabilityMeasure]] = []
        self.commendations: list[CommendationKind] = []
        #: Steps whose clock runs now, with the moment each started.
        self.running: dict[SlaStep, datetime] = {SlaStep.PUSH: meta.occurred_at}
        #: (step, round) pairs that already had their warning / breach.
        self.warned: set[tuple[SlaStep, int]] = set()
        self.breached: set[tuple[SlaStep, int]] = set()

    # -- reading ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True until the case is closed."""
        return self.state is not S.CLOSED

    @property
    def callable(self) -> bool:
        """True when the citizen left a contact for a callback."""
        return self.contact is not None

    @property
    def flagged(self) -> bool:
        """True once the case is under listed supervision (挂牌督办)."""
        return self.flagged_at is not None

    @property
    def callback_impossible(self) -> bool:
        """No contact, or the citizen could not be reached three times this round."""
        return not self.callable or self.failed_attempts >= MAX_CALLBACK_ATTEMPTS

    # -- guards ----------------------------------------------------------------------------

    def _require(self, move: Move, states: Iterable[CaseState], why: str = "") -> None:
        if self.state not in states:
            raise IllegalMoveError(self.ref, self.state.value, move.value, why)

    def _refuse(self, move: Move, why: str) -> IllegalMoveError:
        return IllegalMoveError(self.ref, self.state.value, move.value, why)

    # -- the unit's steps ------------------------------------------------------------------

    def push(self, meta: Meta) -> None:
        """Push the case to its unit (三个一: at once)."""
        self._require(Move.PUSH, {S.OPEN})
        self._pushed(unit_id=self.unit_id, meta=meta)

    @event("Pushed")
    def _pushed(self, unit_id: UUID, meta: Meta) -> None:
        self.state = S.PUSHED
        self.running.pop(SlaStep.PUSH, None)
        self.running[SlaStep.CONTACT] = meta.occurred_at
        self.running[SlaStep.FEEDBACK] = meta.occurred_at

    def contact_citizen(self, note: str, meta: Meta) -> None:
        """The unit head has contacted the citizen."""
        self._require(Move.CONTACT, {S.PUSHED})
        self._citizen_contacted(note=note, meta=meta)

    @event("CitizenContacted")
    def _citizen_contacted(self, note: str, meta: Meta) -> None:
        self.state = S.CONTACTED
        self.running.pop(SlaStep.CONTACT, None)

    def report_result(self, result: str, meta: Meta) -> None:
        """The unit reports the handling result to the office."""
        self._require(Move.REPORT, {S.CONTACTED})
        self._result_reported(result=result, meta=meta)

    @event("ResultReported")
    def _result_reported(self, result: str, meta: Meta) -> None:
        self.state = S.REPORTED
        # Only attempts to call back about the reported result count towards closing unreached.
        self.failed_attempts = 0
        self.running.pop(SlaStep.FEEDBACK, None)
        if self.callable:
            self.running[SlaStep.CALLBACK] = meta.occurred_at

    # -- the office's steps ----------------------------------------------------------------

    def record_callback(self, satisfied: bool, note: str, meta: Meta) -> None:
        """The office called the citizen back and reached them (回访)."""
        self._require(Move.CALLBACK, {S.REPORTED})
        if not self.callable:
            raise self._refuse(Move.CALLBACK, "the citizen left no contact")
        self._callback_recorded(satisfied=satisfied, note=note, meta=meta)

    @event("CallbackRecorded")
    def _callback_recorded(self, satisfied: bool, note: str, meta: Meta) -> None:
        self.state = S.CALLED_BACK
        self.callback_satisfied = satisfied
        self.running.pop(SlaStep.CALLBACK, None)

    def record_callback_attempt(self, note: str, meta: Meta) -> None:
        """A callback attempt that did not reach the citizen."""
        self._require(Move.CALLBACK_ATTEMPT, OPEN_STATES)
        if not self.callable:
            raise self._refuse(Move.CALLBACK_ATTEMPT, "the citizen left no contact")
        self._callback_attempt_failed(note=note, meta=meta)

    @event("CallbackAttemptFailed")
    def _callback_attempt_failed(self, note: str, meta: Meta) -> None:
        self.failed_attempts += 1

    def supervise(self, target: SupervisionTarget, note: str, meta: Meta) -> None:
        """The office records its own contact with the citizen or the unit (督办)."""
        self._require(Move.SUPERVISE, OPEN_STATES)
        self._supervised(target=target, note=note, meta=meta)

    @event("Supervised")
    def _supervised(self, target: SupervisionTarget, note: str, meta: Meta) -> None:
        pass

    def flag(self, reason: str, meta: Meta) -> None:
        """Put the case under listed supervision (挂牌督办); later steps run on tighter limits."""
        self._require(Move.FLAG, OPEN_STATES)
        if self.flagged:
            raise self._refuse(Move.FLAG, "it is already flagged")
        self._flagged(reason=reason, meta=meta)

    @event("Flagged")
    def _flagged(self, reason: str, meta: Meta) -> None:
        self.flagged_at = meta.occurred_at
        self.flag_reason = reason

    def order_rectification(self, instructions: str, due_at: datetime, meta: Meta) -> None:
        """Order the unit to rectify by ``due_at`` (整改)."""
        if self.state is S.REPORTED and not self.callback_impossible:
            raise self._refuse(Move.ORDER_RECTIFICATION, "call the citizen back first")
        self._require(Move.ORDER_RECTIFICATION, {S.CALLED_BACK, S.REPORTED})
        if due_at <= meta.occurred_at:
            raise self._refuse(Move.ORDER_RECTIFICATION, "the due date must be in the future")
        self._rectification_ordered(instructions=instructions, due_at=due_at, meta=meta)

    @event("RectificationOrdered")
    def _rectification_ordered(self, instructions: str, due_at: datetime, meta: Meta) -> None:
        self.state = S.RECTIFYING
        self.rectification_due = due_at
        self.running.pop(SlaStep.CALLBACK, None)
        self.running[SlaStep.RECTIFICATION] = meta.occurred_at

    def report_rectified(self, note: str, meta: Meta) -> None:
        """The unit reports the rectification done."""
        self._require(Move.REPORT_RECTIFIED, {S.RECTIFYING})
        self._rectification_reported(note=note, meta=meta)

    @event("RectificationReported")
    def _rectification_reported(self, note: str, meta: Meta) -> None:
        self.state = S.RECTIFIED
        self.running.pop(SlaStep.RECTIFICATION, None)
        self.running[SlaStep.VERIFICATION] = meta.occurred_at

    def verify(self, implemented: bool, note: str, new_due_at: datetime | None, meta: Meta) -> None:
        """Check on the spot whether the rectification holds (落实核查)."""
        self._require(Move.VERIFY, {S.RECTIFIED})
        if implemented and new_due_at is not None:
            raise self._refuse(Move.VERIFY, "a new due date only goes with a failed verification")
        if not implemented and (new_due_at is None or new_due_at <= meta.occurred_at):
            raise self._refuse(Move.VERIFY, "a failed verification needs a future due date")
        self._verified(implemented=implemented, note=note, new_due_at=new_due_at, meta=meta)

    @event("Verified")
    def _verified(self, implemented: bool, note: str, new_due_at: datetime | None, meta: Meta) -> None:
        self.running.pop(SlaStep.VERIFICATION, None)
        if implemented:
            self.state = S.VERIFIED
        else:
            self.state = S.RECTIFYING
            self.rectification_due = new_due_at
            self.running[SlaStep.RECTIFICATION] = meta.occurred_at

    def close(self, resolution: str, citizen_accepted: bool | None, meta: Meta) -> None:
        """Close the case; the outcome follows from where it stands."""
        outcome = self._closing_outcome()
        if outcome is not CloseOutcome.RESOLVED and citizen_accepted is not None:
            raise self._refuse(Move.CLOSE, "the citizen was not reached, so cannot have accepted")
        self._closed(outcome=outcome, resolution=resolution, citizen_accepted=citizen_accepted, meta=meta)

    def _closing_outcome(self) -> CloseOutcome:
        if self.state is S.VERIFIED or (self.state is S.CALLED_BACK and self.callback_satisfied):
            return CloseOutcome.RESOLVED
        if self.state is S.REPORTED and not self.callable:
            return CloseOutcome.NOT_CALLABLE
        if self.state is S.REPORTED and self.failed_attempts >= MAX_CALLBACK_ATTEMPTS:
            return CloseOutcome.NOT_REACHED
        if self.state is S.CALLED_BACK:
            why = "the citizen was not satisfied; order rectification or reopen"
        elif self.state is S.REPORTED:
            why = f"call the citizen back first ({self.failed_attempts} of {MAX_CALLBACK_ATTEMPTS} attempts failed)"
        else:
            why = ""
        raise self._refuse(Move.CLOSE, why)

    @event("Closed")
    def _closed(
        self,
        outcome: CloseOutcome,
        resolution: str,
        citizen_accepted: bool | None,
        meta: Meta,
    ) -> None:
        self.state = S.CLOSED
        self.outcome = CloseOutcome(outcome)
        self.resolution = resolution
        self.citizen_accepted = citizen_accepted
        self.closed_at = meta.occurred_at
        self.running.clear()

    def reopen(self, reason: str, meta: Meta) -> None:
        """Start a new round at PUSHED: the citizen was not satisfied, or came back within 30 days."""
        if self.state is S.CALLED_BACK:
            if self.callback_satisfied:
                raise self._refuse(Move.REOPEN, "the citizen was satisfied; close it instead")
        elif self.state is S.CLOSED:
            closed_at = self.closed_at or meta.occurred_at
            if meta.occurred_at - closed_at > REOPEN_WINDOW:
                raise self._refuse(Move.REOPEN, "it was closed more than 30 days ago")
        else:
            self._require(Move.REOPEN, {S.CALLED_BACK, S.CLOSED})
        self._reopened(reason=reason, round=self.round + 1, meta=meta)

    @event("Reopened")
    def _reopened(self, reason: str, round: int, meta: Meta) -> None:
        self.state = S.PUSHED
        self.round = round
        self.closed_at = None
        self.outcome = None
        self.resolution = None
        self.citizen_accepted = None
        self.callback_satisfied = None
        self.failed_attempts = 0
        self.rectification_due = None
        self.running = {SlaStep.CONTACT: meta.occurred_at, SlaStep.FEEDBACK: meta.occurred_at}

    # -- records in any state --------------------------------------------------------------

    def record_accountability(self, officer_id: UUID, measure: AccountabilityMeasure, note: str, meta: Meta) -> None:
        """Record an accountability measure (e.g. 通报批评) against an officer."""
        self._accountability_recorded(officer_id=officer_id, measure=measure, note=note, meta=meta)

    @event("AccountabilityRecorded")
    def _accountability_recorded(self, officer_id: UUID, measure: AccountabilityMeasure, note: str, meta: Meta) -> None:
        self.accountability.append((officer_id, AccountabilityMeasure(measure)))

    def record_commendation(
        self,
        kind: CommendationKind,
        officer_id: UUID | None,
        unit_id: UUID | None,
        note: str,
        meta: Meta,
    ) -> None:
        """Record a commendation (锦旗, 点赞) for an officer or a unit."""
        self._commendation_recorded(kind=kind, officer_id=officer_id, unit_id=unit_id, note=note, meta=meta)

    @event("CommendationRecorded")
    def _commendation_recorded(
        self,
        kind: CommendationKind,
        officer_id: UUID | None,
        unit_id: UUID | None,
        note: str,
        meta: Meta,
    ) -> None:
        self.commendations.append(CommendationKind(kind))

    # -- personal data ---------------------------------------------------------------------

    def erase_contact(self, reason: str, meta: Meta) -> None:
        """Record that the citizen's phone and name were erased, in any state (DESIGN §7).

        The event names the citizen reference, not the data: the data were sealed with the
        citizen's key, and deleting that key (``adapters.privacy``) is what erases them. The
        case stays callable in the rates (it had a contact); only the data are gone.
        """
        if self.contact is None:
            raise RuleViolationError(f"case {self.ref} has no citizen contact to erase")
        if self.contact_erased_at is not None:
            raise AlreadyErasedError(self.ref, self.contact_erased_at)
        self._contact_erased(citizen_ref=self.contact.citizen_ref, reason=reason, meta=meta)

    @event("ContactErased")
    def _contact_erased(self, citizen_ref: str, reason: str, meta: Meta) -> None:
        self.contact = Contact.erased_for(citizen_ref)
        self.contact_erased_at = meta.occurred_at

    # -- SLA -------------------------------------------------------------------------------

    def record_sla_warning(self, step: SlaStep, round: int, meta: Meta) -> None:
        """A step reached 80 % of its limit; at most once per step and round."""
        key = self._check_sla(Move.SLA_WARNING, SlaStep(step), round)
        if key in self.warned or key in self.breached:
            raise self._refuse(Move.SLA_WARNING, f"{step} of round {round} was already warned")
        self._sla_warned(step=step, round=round, meta=meta)

    @event("SlaWarned")
    def _sla_warned(self, step: SlaStep, round: int, meta: Meta) -> None:
        self.warned.add((SlaStep(step), round))

    def record_sla_breach(self, step: SlaStep, round: int, meta: Meta) -> None:
        """A step passed its limit; a feedback breach also flags the case."""
        key = self._check_sla(Move.SLA_BREACH, SlaStep(step), round)
        if key in self.breached:
            raise self._refuse(Move.SLA_BREACH, f"{step} of round {round} was already breached")
        self._sla_breached(step=step, round=round, meta=meta)
        if key[0] is SlaStep.FEEDBACK and not self.flagged:
            self._flagged(reason="feedback deadline breached (自动挂牌督办)", meta=meta)

    @event("SlaBreached")
    def _sla_breached(self, step: SlaStep, round: int, meta: Meta) -> None:
        self.breached.add((SlaStep(step), round))

    def _check_sla(self, move: Move, step: SlaStep, round: int) -> tuple[SlaStep, int]:
        self._require(move, OPEN_STATES)
        if round != self.round:
            raise self._refuse(move, f"it is in round {self.round}, not {round}")
        if step not in self.running:
            raise self._refuse(move, f"step {step} is not running")
        return step, round
