"""Seals of the log: reading the chain's head, recording a seal, finding seals again.

The domain records a seal (:class:`domain.seals.LogSeal`) with whatever position and hash
it is given; this adapter is what reads them from the store's chain, so that the domain
never touches a table. A seal is made on demand (``pingjing audit seal``), once a day by
the leading scheduler, and just before every monthly bulletin, which prints the latest one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from adapters.audit.log import AuditNotSupportedError, EventRow
from adapters.persistence.chain import id_text
from adapters.persistence.postgres import ChainedPostgresApplicationRecorder
from adapters.persistence.sqlite import ChainedSQLiteApplicationRecorder
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.errors import AlreadyExistsError
from domain.seals import LogSeal, seal_id
from domain.values import Actor, Channel

#: The stored topic of a seal's event.
SEAL_TOPIC = get_topic(LogSeal.Sealed)  # type: ignore[attr-defined]
#: Who seals on schedule.
SYSTEM = Context(Actor.system(), Channel.SYSTEM)
#: Seal events read at a time while looking for the latest one.
_PAGE = 1000


@dataclass(frozen=True)
class Seal:
    """A seal as recorded: the position sealed and its chain hash, when and by whom, and where the seal is."""

    position: int
    chain_hash: str
    sealed_at: datetime
    sealed_by: str
    recorded_at: int  # the log position of the seal's own event

    @property
    def expect(self) -> str:
        """The ``--expect`` argument that checks this seal: ``POSITION:HASH``."""
        return f"{self.position}:{self.chain_hash}"


def chain_head(app: PingjingApp) -> tuple[int, str] | None:
    """The last chained position and its chain hash (hex); None when nothing is stored yet."""
    recorder: Any = app.recorder
    if not isinstance(recorder, ChainedSQLiteApplicationRecorder | ChainedPostgresApplicationRecorder):
        raise AuditNotSupportedError("a memory store keeps no chain: there is nothing to seal")
    head = recorder.chain_head()
    return None if head is None else (head[0], head[1].hex())


def seal(app: PingjingApp, context: Context) -> Seal | None:
    """Seal the chain's head now; None when the log is empty.

    Two sealers reading the same head record one seal between them: the second gets the first's.
    """
    head = chain_head(app)
    if head is None:
        return None
    position, chain_hash = head
    with contextlib.suppress(AlreadyExistsError):
        app.seal_log(c.SealLog(position=position, chain_hash=chain_hash), context)
    recorded = app.get_aggregate(seal_id(position))
    if not isinstance(recorded, LogSeal):
        raise RuntimeError(f"the seal of position {position} was recorded but cannot be read back")
    return _seal_of(recorded, _position_of(app, recorded))


def seal_if_changed(app: PingjingApp, context: Context = SYSTEM) -> Seal | None:
    """The daily seal: seal the head unless nothing but a seal was written since the last one."""
    head = chain_head(app)
    if head is None:
        return None
    last = app.recorder.select_notifications(start=head[0], limit=1)
    if last and last[0].topic == SEAL_TOPIC:
        return None
    return seal(app, context)


def decode(mapper: Mapper[UUID], row: EventRow) -> Seal | None:
    """The seal a stored row holds; None when its state no longer decodes (the walk names that row)."""
    position, originator_id, version, topic, state = row
    try:
        stored = StoredEvent(originator_id=UUID(originator_id), originator_version=version, topic=topic, state=state)
        event: Any = mapper.to_domain_event(stored)
        return Seal(
            position=int(event.position),
            chain_hash=str(event.chain_hash),
            sealed_at=event.meta.occurred_at,
            sealed_by=str(event.meta.actor),
            recorded_at=position,
        )
    except Exception:  # noqa: BLE001 - an altered row may fail to decode in any way; the walk reports it
        return None


def latest_seal(app: PingjingApp, position: int) -> Seal | None:
    """The latest seal recorded at or before log position ``position`` (deterministic for that position)."""
    found = None
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=_PAGE, stop=position, topics=[SEAL_TOPIC])
        if page:
            found = page[-1]
        if len(page) < _PAGE:
            break
        start = page[-1].id + 1
    if found is None:
        return None
    return decode(app.mapper, (found.id, id_text(found.originator_id), found.originator_version, found.topic,
                               found.state))


def _seal_of(recorded: LogSeal, recorded_at: int) -> Seal:
    return Seal(recorded.position, recorded.chain_hash, recorded.sealed_at, recorded.sealed_by, recorded_at)


def _position_of(app: PingjingApp, recorded: LogSeal) -> int:
    """The log position of a seal's event: the first seal event after the position it seals, usually."""
    start = recorded.position + 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=_PAGE, topics=[SEAL_TOPIC])
        for n in page:
            if n.originator_id == recorded.id:
                return n.id
        if len(page) < _PAGE:
            raise RuntimeError(f"the event of the seal of position {recorded.position} is not in the log")
        start = page[-1].id + 1
