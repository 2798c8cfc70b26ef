"""Domain errors: every refusal the product can give, named after what was wrong.

::

    PingjingError
     ├── ValidationError            bad input: a field out of range, a time without a zone
     ├── NotFoundError              an unknown unit, officer, encounter, code or case
     ├── AlreadyExistsError         a unit code, badge or encounter that is taken
     ├── PermissionDeniedError      the actor's role or unit may not make this move
     ├── IllegalMoveError           the case's state does not allow the move
     ├── RuleViolationError         another business rule (an officer who has left, a used code)
     └── ConflictError              someone else changed the same aggregate at the same time

A use case either succeeds completely or raises one of these and writes nothing.
"""

from __future__ import annotations


class PingjingError(Exception):
    """Base class of every error the domain raises on purpose."""


class ValidationError(PingjingError):
    """The input is malformed or out of range."""


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


class ConflictError(PingjingError):
    """Another writer changed the same aggregate first; reload and try again."""
