"""Units, officers and their QR identities: who can be rated."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import RuleViolationError
from domain.ids import officer_id, qr_identity_id, unit_id
from domain.values import Meta, OfficerKind, QrSubject, UnitKind


class Unit(DomainAggregate):
    """A unit of the bureau: the bureau itself, a police station, a window hall, ..."""

    @staticmethod
    def create_id(code: str, **_: object) -> UUID:
        """Units are found by their code."""
        return unit_id(code)

    @event("Registered")
    def __init__(self, code: str, name: str, kind: UnitKind, parent_id: UUID | None, meta: Meta) -> None:
        self.code = code
        self.name = name
        self.kind = UnitKind(kind)
        self.parent_id = parent_id
        self.head_id: UUID | None = None
        self.head_badge: str | None = None
        self.registered_at = meta.occurred_at

    def assign_head(self, officer: Officer, meta: Meta) -> None:
        """Make ``officer`` the head of this unit."""
        if officer.left:
            raise RuleViolationError(f"officer {officer.badge} has left and cannot head a unit")
        if officer.unit_id != self.id:
            raise RuleViolationError(
                f"officer {officer.badge} does not belong to unit {self.code}; transfer them first"
            )
        self._head_assigned(officer_id=officer.id, badge=officer.badge, meta=meta)

    @event("HeadAssigned")
    def _head_assigned(self, officer_id: UUID, badge: str, meta: Meta) -> None:
        self.head_id = officer_id
        self.head_badge = badge

    def vacate_head(self, reason: str, meta: Meta) -> None:
        """The head moved on; until a new one is assigned, nobody acts as this unit's head."""
        if self.head_id is None:
            raise RuleViolationError(f"unit {self.code} has no head")
        self._head_vacated(reason=reason, meta=meta)

    @event("HeadVacated")
    def _head_vacated(self, reason: str, meta: Meta) -> None:
        self.head_id = None
        self.head_badge = None


class Officer(DomainAggregate):
    """A police or auxiliary officer, identified by badge number."""

    @staticmethod
    def create_id(badge: str, **_: object) -> UUID:
        """Officers are found by their badge number."""
        return officer_id(badge)

    @event("Registered")
    def __init__(self, badge: str, name: str, kind: OfficerKind, unit_id: UUID, meta: Meta) -> None:
        self.badge = badge
        self.name = name
        self.kind = OfficerKind(kind)
        self.unit_id = unit_id
        self.left = False
        self.registered_at = meta.occurred_at

    def transfer(self, unit: Unit, meta: Meta) -> None:
        """Move the officer to another unit."""
        self._require_active("be transferred")
        if unit.id == self.unit_id:
            raise RuleViolationError(f"officer {self.badge} already belongs to unit {unit.code}")
        self._transferred(unit_id=unit.id, meta=meta)

    @event("Transferred")
    def _transferred(self, unit_id: UUID, meta: Meta) -> None:
        self.unit_id = unit_id

    def leave(self, reason: str, meta: Meta) -> None:
        """Record that the officer left the force; they can no longer be rated."""
        self._require_active("leave again")
        self._left(reason=reason, meta=meta)

    @event("Left")
    def _left(self, reason: str, meta: Meta) -> None:
        self.left = True

    def _require_active(self, what: str) -> None:
        if self.left:
            raise RuleViolationError(f"officer {self.badge} has left and cannot {what}")


class QrIdentity(DomainAggregate):
    """The identity a QR code stands for; its version changes on every rotation.

    The printed token carries the version: rotating or revoking makes old codes stale.
    """

    @staticmethod
    def create_id(subject: QrSubject, key: str, **_: object) -> UUID:
        """One QR identity per unit code or officer badge."""
        return qr_identity_id(QrSubject(subject), key)

    @event("Issued")
    def __init__(self, subject: QrSubject, key: str, subject_id: UUID, meta: Meta) -> None:
        self.subject = QrSubject(subject)
        self.key = key
        self.subject_id = subject_id
        self.qr_version = 1
        self.active = True

    def rotate(self, meta: Meta) -> None:
        """Issue a new version; codes printed before stop working."""
        self._rotated(version=self.qr_version + 1, meta=meta)

    def reissue(self, meta: Meta) -> None:
        """Issue again after a revocation."""
        if self.active:
            raise RuleViolationError(f"QR code of {self.subject} {self.key} is already issued; rotate it instead")
        self._rotated(version=self.qr_version + 1, meta=meta)

    @event("Rotated")
    def _rotated(self, version: int, meta: Meta) -> None:
        self.qr_version = version
        self.active = True

    def revoke(self, reason: str, meta: Meta) -> None:
        """Withdraw the code; it answers with a clear refusal until reissued."""
        if not self.active:
            raise RuleViolationError(f"QR code of {self.subject} {self.key} is already revoked")
        self._revoked(reason=reason, meta=meta)

    @event("Revoked")
    def _revoked(self, reason: str, meta: Meta) -> None:
        self.active = False
