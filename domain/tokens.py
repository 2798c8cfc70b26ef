"""API tokens, and the record of every read of a citizen's personal data by staff (DESIGN §7).

A token is a random secret handed to one member of staff once; only its SHA-256 is stored
(in the token's first event), and the aggregate's id is derived from that hash, so the token
of a request is found with one load by id and the secret itself is never kept anywhere. A
token binds a principal to a role (and a unit head to their unit) until it is revoked.

Reading a citizen's phone or name is itself a fact worth keeping: each read is a small
aggregate of one event (:class:`PersonalDataRead`), recorded before the data is handed out.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import RuleViolationError
from domain.ids import NAMESPACE
from domain.values import Meta, Role

#: The roles a token can carry: staff. Citizens have no token; the scheduler runs in-process.
TOKEN_ROLES = frozenset({Role.OFFICER, Role.UNIT_HEAD, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN})


def hash_token(secret: str) -> str:
    """The SHA-256 of a token's secret (hex): what is stored and looked up, never the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def api_token_id(token_hash: str) -> uuid.UUID:
    """The aggregate id of the token whose secret has this hash."""
    return uuid.uuid5(NAMESPACE, f"api-token:{token_hash}")


class ApiToken(DomainAggregate):
    """A bearer token: who holds it, in which role (and unit), and whether it still works."""

    @staticmethod
    def create_id(token_hash: str, **_: object) -> uuid.UUID:
        """A token is found by the hash of its secret."""
        return api_token_id(token_hash)

    @event("Created")
    def __init__(
        self,
        token_hash: str,
        role: Role,
        principal: str,
        unit_code: str | None,
        description: str | None,
        meta: Meta,
    ) -> None:
        self.token_hash = token_hash
        self.role = Role(role)
        self.principal = principal
        self.unit_code = unit_code
        self.description = description
        self.created_at = meta.occurred_at
        self.created_by = meta.actor
        self.revoked = False
        self.revoked_at: datetime | None = None
        self.revoke_reason: str | None = None

    def revoke(self, reason: str, meta: Meta) -> None:
        """Withdraw the token: every request carrying it is refused from now on."""
        if self.revoked:
            raise RuleViolationError(f"{self.label} is already revoked")
        self._revoked(reason=reason, meta=meta)

    @event("Revoked")
    def _revoked(self, reason: str, meta: Meta) -> None:
        self.revoked = True
        self.revoked_at = meta.occurred_at
        self.revoke_reason = reason

    @property
    def label(self) -> str:
        """How refusals name this token (never by its hash)."""
        return f"API token {self.id}"


class PersonalDataRead(DomainAggregate):
    """One read of a case's contact (phone, name) by a member of staff: who, which case, when, what."""

    @event("Recorded")
    def __init__(
        self,
        id: uuid.UUID,
        case_ref: str,
        case_id: uuid.UUID,
        fields: list[str],
        token_id: uuid.UUID | None,
        meta: Meta,
    ) -> None:
        self.case_ref = case_ref
        self.case_id = case_id
        self.fields = list(fields)
        self.token_id = token_id
        self.read_at = meta.occurred_at
        self.read_by = meta.actor
        self.role = meta.role

    @property
    def label(self) -> str:
        """How refusals name this record."""
        return f"personal data read {self.id} of case {self.case_ref}"
