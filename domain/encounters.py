"""Encounters (the four must-scans) and their one-time encounter codes."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import EncounterCodeError
from domain.ids import encounter_code_id
from domain.values import EncounterKind, Meta

#: How long a one-time code stays valid after its encounter (DESIGN §6: 72 h window).
CODE_VALIDITY = timedelta(hours=72)


class Encounter(DomainAggregate):
    """A dispatch, reception, service or duty encounter that must be offered a scan."""

    @event("Logged")
    def __init__(
        self,
        id: UUID,
        kind: EncounterKind,
        officer_id: UUID | None,
        unit_id: UUID,
        happened_at: datetime,
        external_ref: str | None,
        has_code: bool,
        meta: Meta,
    ) -> None:
        self.kind = EncounterKind(kind)
        self.officer_id = officer_id
        self.unit_id = unit_id
        self.happened_at = happened_at
        self.external_ref = external_ref
        self.has_code = has_code


class EncounterCode(DomainAggregate):
    """A one-time code handed to the citizen at an encounter; a rating redeems it once."""

    @classmethod
    def issue(
        cls,
        code: str,
        encounter_id: UUID,
        officer_id: UUID | None,
        unit_id: UUID,
        happened_at: datetime,
        meta: Meta,
    ) -> EncounterCode:
        """Issue ``code``; its id is derived from it and the code itself is not stored."""
        return cls(
            id=encounter_code_id(code),
            encounter_id=encounter_id,
            officer_id=officer_id,
            unit_id=unit_id,
            expires_at=happened_at + CODE_VALIDITY,
            meta=meta,
        )

    @event("Issued")
    def __init__(
        self,
        id: UUID,
        encounter_id: UUID,
        officer_id: UUID | None,
        unit_id: UUID,
        expires_at: datetime,
        meta: Meta,
    ) -> None:
        self.encounter_id = encounter_id
        self.officer_id = officer_id
        self.unit_id = unit_id
        self.expires_at = expires_at
        self.redeemed_by: UUID | None = None

    def redeem(self, rating_id: UUID, officer_id: UUID | None, unit_id: UUID, meta: Meta) -> None:
        """Use the code for a rating of the encounter's officer or unit, once."""
        if self.redeemed_by is not None:
            raise EncounterCodeError("this encounter code has already been used")
        if meta.occurred_at > self.expires_at:
            raise EncounterCodeError("this encounter code has expired")
        if officer_id is not None and officer_id != self.officer_id:
            raise EncounterCodeError("this encounter code belongs to another officer")
        if officer_id is None and unit_id != self.unit_id:
            raise EncounterCodeError("this encounter code belongs to another unit")
        self._redeemed(rating_id=rating_id, meta=meta)

    @event("Redeemed")
    def _redeemed(self, rating_id: UUID, meta: Meta) -> None:
        self.redeemed_by = rating_id
