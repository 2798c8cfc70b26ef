"""What every handler gets (:class:`Work`) and returns (:class:`Receipt`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.clock import IdSource
from domain.errors import AlreadyExistsError
from domain.ids import case_id, make_case_ref
from domain.ratings import RATING_WINDOW
from domain.uow import UnitOfWork
from domain.values import Actor, Meta, Role

CASE_REF_TOKEN_LENGTH = 6
_REF_TRIES = 8


@dataclass(frozen=True)
class Receipt:
    """A use case's plain answer: what was done, to which aggregate, the case it touched."""

    command: str
    aggregate_id: UUID | None
    case_ref: str | None = None
    state: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Work:
    """The handler's tools: the unit of work, the event metadata, the actor, the id source."""

    uow: UnitOfWork
    meta: Meta
    actor: Actor
    ids: IdSource
    #: Check that a new case reference is free (a batch relies on its transaction instead).
    check_refs: bool = True
    #: One rating per device per officer or unit within this window (zero: no limit).
    rating_window: timedelta = RATING_WINDOW

    @property
    def now(self) -> datetime:
        """The moment the command happened."""
        return self.meta.occurred_at

    def system_meta(self) -> Meta:
        """Metadata for what the system does at once as part of this command (the push)."""
        return replace(self.meta, actor="system", role=Role.SYSTEM)

    def new_case_ref(self) -> str:
        """A fresh case reference for today (Asia/Shanghai)."""
        for _ in range(_REF_TRIES):
            ref = make_case_ref(self.now, self.ids.new_token(CASE_REF_TOKEN_LENGTH))
            if not self.check_refs or not self.uow.exists(case_id(ref)):
                return ref
        raise AlreadyExistsError("case reference", "(no free reference today)")
