"""Seals (checkpoints) of the tamper-evident log.

The store keeps a hash chain over the stored events (``pingjing audit verify`` recomputes
it); a seal records, as an event in the log itself, that at some moment the chain stood at
a position with a given hash. Anyone holding a seal's pair (a printed monthly bulletin, an
auditor's note) can later check that the log up to that position is still exactly what it
was: rewriting history then means forging every copy of the seal as well.

The domain only records the pair: the adapter that reads the chain supplies it, so the
domain knows nothing of tables or hashes. A seal's identity is derived from the position it
seals, so one position is sealed once.
"""

from __future__ import annotations

import uuid

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.ids import NAMESPACE
from domain.values import Meta


def seal_id(position: int) -> uuid.UUID:
    """The aggregate id of the seal of ``position``."""
    return uuid.uuid5(NAMESPACE, f"log-seal:{position}")


class LogSeal(DomainAggregate):
    """A checkpoint: the chain hash of the log at one position, recorded with who sealed it and when."""

    @staticmethod
    def create_id(position: int, **_: object) -> uuid.UUID:
        """A seal is found by the position it seals."""
        return seal_id(position)

    @event("Sealed")
    def __init__(self, position: int, chain_hash: str, meta: Meta) -> None:
        self.position = position
        self.chain_hash = chain_hash
        self.sealed_at = meta.occurred_at
        self.sealed_by = meta.actor

    @property
    def label(self) -> str:
        """How refusals name this seal."""
        return f"log seal of position {self.position}"
