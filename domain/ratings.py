"""A citizen's rating of an officer or a unit."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.values import CaseKind, Meta, QrSubject, Verdict


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
