"""Domain errors: every refusal the product can give, named after what was wrong.

::

    PingjingError
     ├── ValidationError            bad input: a field out of range, a time without a zone
     │    └── OutOfOrderError       an event dated before the latest event of its aggregate
     ├── NotFoundError              an unknown unit, officer, encounter, code or case
     ├── AlreadyExistsError         a unit code, badge or encounter that is taken
     ├── PermissionDeniedError      the actor's role or unit may not make this move
     ├── IllegalMoveError           the case's state does not allow the move
     ├── RuleViolationError         another business rule (an officer who has left, a used code)
     │    ├── EncounterCodeError    a one-time encounter code already used, expired, or another's
     │    ├── QrCodeRefusedError    a rating from a QR code that was rotated, revoked or never issued
     │    └── RepeatRatingError     the same device rated the same officer or unit too recently
     └── ConflictError              someone else changed the same aggregate at the same time

A use case either succeeds completely or raises one of these and writes nothing.
"""

from __future__ import annotations

from datetime import datetime


class PingjingError(Exception):
    """Base class of every error the domain raises on purpose."""


class ValidationError(PingjingError):
    """The input is malformed or out of range."""


class OutOfOrderError(ValidationError):
    """An event dated before the latest event of the aggregate it would join: history only moves forward."""


class NotFoundError(PingjingError):
    """A referenced unit, officer, encounter, code or case does not exist."""

    def __init__(self, what: str, key: str) -> None:
        self.what = what
        self.key = key
        super().__init__(f"unknown {what} {key!r}")


class AlreadyExistsError(PingjingError):
    """Something that must be unique is already taken."""

    def __init__(self, what: str, key: str) -> None:
        self.what = what
        self.key = key
        super().__init__(f"{what} {key!r} already exists")


class PermissionDeniedError(PingjingError):
    """The actor's role (or unit) does not allow this use case."""


class IllegalMoveError(PingjingError):
    """A case move that its current state does not allow."""

    def __init__(self, ref: str, state: str, move: str, why: str = "") -> None:
        self.ref = ref
        self.state = state
        self.move = move
        detail = f": {why}" if why else ""
        super().__init__(f"case {ref} is {state}; cannot {move}{detail}")


class RuleViolationError(PingjingError):
    """A business rule other than the case's state machine refuses the command."""


class EncounterCodeError(RuleViolationError):
    """A one-time encounter code that cannot verify this rating: used, expired, or another officer's or unit's."""


class QrCodeRefusedError(RuleViolationError):
    """A rating made from a QR code the identity no longer has: rotated since, revoked, or never issued."""

    def __init__(self, what: str, reason: str) -> None:
        #: ``rotated``, ``revoked`` or ``unknown``.
        self.reason = reason
        super().__init__(f"the QR code of {what} was {reason}" if reason != "unknown"
                         else f"{what} never had this QR code")


class RepeatRatingError(RuleViolationError):
    """One device rates one officer or unit at most once per window (DESIGN §7, ballot stuffing)."""

    def __init__(self, what: str, last_at: datetime, retry_after: datetime) -> None:
        self.last_at = last_at
        self.retry_after = retry_after
        super().__init__(
            f"this device already rated {what} at {last_at.isoformat(timespec='minutes')}; "
            f"one rating per device per officer or unit until {retry_after.isoformat(timespec='minutes')}"
        )


class ConflictError(PingjingError):
    """Another writer changed the same aggregate first; reload and try again."""
