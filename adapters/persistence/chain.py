"""The hash chain over the stored events: what is hashed, how, and in which order.

Every stored event gets one row in a chain table beside the events table, written in the
same transaction as the event::

    event_hash(n) = SHA-256( "pingjing-event-v1" 0x00
                             ‖ u32(len(id)) ‖ id ‖ u64(version)
                             ‖ u32(len(topic)) ‖ topic ‖ u64(len(state)) ‖ state )
    chain_hash(n) = SHA-256( chain_hash(previous row) ‖ u64(n) ‖ event_hash(n) )
    chain_hash(before the first row) = GENESIS = 32 zero bytes

``n`` is the event's position in the log (its notification id), ``id`` the originator id
as the store writes it (32 lower-case hex digits for a UUID, the text itself otherwise),
all texts UTF-8, all integers big-endian and unsigned. Each variable-length field carries
its length, so no two different rows encode to the same bytes. ``state`` is exactly the
stored bytes, after whatever the transcoder did (encryption included): the chain vouches
for what is on disk, so erasing a citizen's key leaves it intact.

The position is part of ``chain_hash``, so a row that moves, or two rows that swap, break
the chain even when their content is intact; and each ``chain_hash`` covers everything
before it, so one hash (a seal, a published bulletin) vouches for the whole log up to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from struct import Struct
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from adapters.persistence import ChainError

#: The chain hash "before" the first event.
GENESIS = bytes(32)
#: Names the encoding: a future format gets a new tag, never a silently different hash.
EVENT_TAG = b"pingjing-event-v1\x00"

_U32 = Struct(">I").pack
_U64 = Struct(">Q").pack
_HEX_ID_LENGTH = _U32(32)


def id_text(originator_id: UUID | str) -> str:
    """The originator id as the SQLite store writes it (and as PostgreSQL's is hashed)."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def event_hash(originator_id: str, version: int, topic: str, state: bytes) -> bytes:
    """The SHA-256 of one stored row's content (see the module docstring)."""
    oid = originator_id.encode()
    head = _HEX_ID_LENGTH if len(oid) == 32 else _U32(len(oid))  # a UUID's 32 hex digits, most ids
    name = topic.encode()
    return sha256(
        EVENT_TAG + head + oid + _U64(version) + _U32(len(name)) + name + _U64(len(state)) + state
    ).digest()


def link(previous: bytes, position: int, event_digest: bytes) -> bytes:
    """The chain hash at ``position``: the previous chain hash, the position and the event hash."""
    return sha256(previous + _U64(position) + event_digest).digest()


def chain_rows(
    previous: bytes, rows: list[tuple[int, str, int, str, bytes]]
) -> list[tuple[int, bytes, bytes]]:
    """``(position, event_hash, chain_hash)`` for stored rows ``(position, id, version, topic, state)``
    that follow a row whose chain hash is ``previous``, in the order given."""
    out = []
    for position, originator_id, version, topic, state in rows:
        digest = event_hash(originator_id, version, topic, state)
        previous = link(previous, position, digest)
        out.append((position, digest, previous))
    return out


def links_after(
    head: tuple[int, bytes] | None, positions: Sequence[int], stored_events: Sequence[StoredEvent], *, tampered: str
) -> list[tuple[int, bytes, bytes]]:
    """The chain rows of events just inserted at ``positions``, after the chain's ``head``
    (its last position and chain hash; None: nothing chained yet).

    A first position at or before the head means stored events were removed or rewritten
    underneath the chain: refused with :class:`ChainError`, ``tampered`` saying how.
    """
    head_position, previous = head if head is not None else (0, GENESIS)
    if positions[0] <= head_position:
        raise ChainError(
            f"position {positions[0]} is already in the chain (its head is {head_position}): "
            f"{tampered}; run pingjing audit verify"
        )
    rows = [
        (position, id_text(s.originator_id), s.originator_version, s.topic, s.state)
        for position, s in zip(positions, stored_events, strict=True)
    ]
    return chain_rows(previous, rows)
