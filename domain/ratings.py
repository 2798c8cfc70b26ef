"""A citizen's rating of an officer or a unit."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import RepeatRatingError
from domain.values import CaseKind, Meta, QrSubject, Verdict

#: How often one device may rate one officer or unit (DESIGN §7: once per 24 h by default).
RATING_WINDOW = timedelta(hours=24)


class Rating(DomainAggregate):
    """One rating: verdict, three 1-5 scores, optional texts and encounter link.

    A callback contact is kept only on the case the rating opens, never on the rating.

    The rated officer never sees a single rating (DESIGN §1); only aggregates leave here.
    """

    @event("Submitted")
    def __init__(
        self,
        id: UUID,
        target: QrSubject,
        target_id: UUID,
        unit_id: UUID,
        officer_id: UUID | None,
        verdict: Verdict,
        service_score: int,
        attitude_score: int,
        efficiency_score: int,
        comment: str | None,
        complaint: str | None,
        suggestion: str | None,
        encounter_id: UUID | None,
        device_hash: str | None,
        case_ref: str | None,
        meta: Meta,
    ) -> None:
        self.target = QrSubject(target)
        self.target_id = target_id
        self.unit_id = unit_id
        self.officer_id = officer_id
        self.verdict = Verdict(verdict)
        self.scores = (service_score, attitude_score, efficiency_score)
        self.comment = comment
        self.complaint = complaint
        self.suggestion = suggestion
        self.encounter_id = encounter_id
        self.device_hash = device_hash
        self.case_ref = case_ref
        self.submitted_at = meta.occurred_at


def case_kind_for(verdict: Verdict, complaint: str | None, suggestion: str | None) -> CaseKind | None:
    """Which case a rating opens (三个一): a complaint, a suggestion, a dissatisfied verdict, or none."""
    if complaint:
        return CaseKind.COMPLAINT
    if suggestion:
        return CaseKind.SUGGESTION
    if verdict is Verdict.DISSATISFIED:
        return CaseKind.DISSATISFACTION
    return None


class DeviceBallot(DomainAggregate):
    """When one device last rated one officer or unit: at most one rating per window (DESIGN §7).

    The device is known only by its keyed hash, and only through this aggregate's id
    (:func:`domain.ids.device_ballot_id`); the events hold the ratings it cast, no device data.
    Two ratings racing from one device both create or change the same ballot, so the store
    lets one through and the other is decided again, and refused.
    """

    @event("Cast")
    def __init__(self, id: UUID, target_id: UUID, rating_id: UUID, meta: Meta) -> None:
        self.target_id = target_id
        self.last_rating_id = rating_id
        self.last_at = meta.occurred_at
        self.ratings = 1

    def check(self, what: str, now: datetime, window: timedelta) -> None:
        """Refuse another rating before ``window`` has passed since the last one."""
        retry_after = self.last_at + window
        if now < retry_after:
            raise RepeatRatingError(what, self.last_at, retry_after)

    def cast(self, rating_id: UUID, meta: Meta) -> None:
        """Record another rating from this device (after :meth:`check` let it through)."""
        self._cast(rating_id=rating_id, meta=meta)

    @event("CastAgain")
    def _cast(self, rating_id: UUID, meta: Meta) -> None:
        self.last_rating_id = rating_id
        self.last_at = meta.occurred_at
        self.ratings += 1
