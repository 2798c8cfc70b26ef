"""``audit verify``: walk the log, recompute every event hash and the chain, name the first problem.

The walk reads the events and the chain rows side by side in position order (one
snapshot, plain SQL) and stops at the first thing that does not hold:

- **changed**: an event's content no longer gives the event hash recorded for it;
- **moved**: its content gives the hash recorded at *another* position (moved, or swapped);
- **deleted**: the chain records an event at a position where there is none;
- **inserted**: an event with no chain row (between chained positions, or after the chain's end);
- **chain**: the chain table itself was altered (a chain hash that does not follow from the
  previous one and the event, an event hash column changed, a chain row removed);
- **seal**: a seal recorded in the log names a chain hash the chain no longer gives;
- **expect**: the same for a ``--expect POSITION:HASH`` given on the command line (a hash from
  a printed bulletin, an auditor's note).

A seal in the log is only as trustworthy as the log: whoever rewrites history and the whole
chain after it can rewrite the seals too. A hash kept outside (the monthly bulletin prints
one) cannot be reached that way, which is what ``--expect`` is for.

``--from POSITION`` trusts the stored chain hash of the last chained position before
POSITION and checks from there on: a quick daily check of what is new.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from hashlib import sha256
from itertools import zip_longest
from struct import Struct
from time import perf_counter
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from adapters.audit import seals as seal_rows
from adapters.audit.log import ChainLog, ChainRow, EventRow, Snapshot
from adapters.persistence.chain import EVENT_TAG, GENESIS, event_hash, link


class Kind(StrEnum):
    """What kind of problem the walk found."""

    CHANGED = "changed"
    MOVED = "moved"
    DELETED = "deleted"
    INSERTED = "inserted"
    CHAIN = "chain"
    SEAL = "seal"
    EXPECT = "expect"


@dataclass(frozen=True)
class Problem:
    """The first problem: where, what, which event, and what was expected against what was found."""

    kind: Kind
    position: int
    summary: str
    expected: str
    found: str
    aggregate_id: str | None = None
    event_type: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class Anchor:
    """A chain hash someone vouches for at a position: a seal in the log, or an ``--expect``."""

    position: int
    chain_hash: str
    source: str
    seal: seal_rows.Seal | None = None


@dataclass(frozen=True)
class Verification:
    """What ``audit verify`` found."""

    store: str
    start: int  # the first position checked
    events: int  # events checked (from ``start``)
    head_position: int | None
    head_hash: str | None
    seals: int  # seals checked
    expectations: int  # --expect hashes checked
    seconds: float
    problem: Problem | None = None
    anchors: list[Anchor] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """Nothing was found wrong."""
        return self.problem is None

    @property
    def events_per_second(self) -> float:
        """How fast the walk went."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


class ExpectError(ValueError):
    """A ``--expect`` argument is not ``POSITION:HASH``."""


def parse_expect(text: str) -> tuple[int, str]:
    """``POSITION:HASH`` (64 hex digits) as a pair."""
    position, sep, digest = text.strip().partition(":")
    digest = digest.strip().lower()
    if not sep or not position.strip().isdigit() or int(position) < 1:
        raise ExpectError(f"--expect {text!r}: expected POSITION:HASH, e.g. 1234:9f86d08…")
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ExpectError(f"--expect {text!r}: the hash must be 64 hexadecimal digits (SHA-256)")
    return int(position), digest


def verify(
    log: ChainLog,
    mapper: Mapper[UUID],
    *,
    start: int | None = None,
    expect: Sequence[tuple[int, str]] = (),
) -> Verification:
    """Walk ``log`` from ``start`` (default: the first event) and compare with the chain, its seals and ``expect``."""
    began = perf_counter()
    with log.snapshot() as snap:
        walk = _Walk(snap, mapper, expect)
        walk.run(start or 1)
    return Verification(
        store=log.description,
        start=walk.start,
        events=walk.count,
        head_position=walk.head_position,
        head_hash=walk.head_hash,
        seals=walk.seals_checked,
        expectations=walk.expectations_checked,
        seconds=perf_counter() - began,
        problem=walk.problem,
        anchors=walk.anchors,
    )


def _type_of(topic: str) -> str:
    """``Rating.Submitted`` from ``domain.ratings:Rating.Submitted``."""
    return topic.rpartition(":")[2]


class _Walk:
    """One walk over a snapshot; :attr:`problem` is the first problem found, or None."""

    def __init__(self, snap: Snapshot, mapper: Mapper[UUID], expect: Sequence[tuple[int, str]]) -> None:
        self.snap = snap
        self.problem: Problem | None = None
        self.count = 0
        self.start = 1
        self.head_position: int | None = None
        self.head_hash: str | None = None
        self.seals_checked = 0
        self.expectations_checked = 0
        self.anchors = [Anchor(p, h, f"--expect {p}:{h}") for p, h in expect]
        for row in snap.rows_of_topic(seal_rows.SEAL_TOPIC):
            found = seal_rows.decode(mapper, row)
            if found is not None:
                source = f"the seal recorded at position {found.recorded_at}"
                self.anchors.append(Anchor(found.position, found.chain_hash, source, found))
        self.anchors.sort(key=lambda a: (a.position, a.seal is not None))
        # A seal that does not match is reported once the walk has checked the seal's own event:
        # if that event was altered, the altered seal is the problem, not the log it seals.
        self._pending: tuple[Problem, int] | None = None

    # -- the walk -------------------------------------------------------------------------------

    def run(self, start: int) -> None:
        """Check from ``start``, trusting the stored chain hash of the last chained position before it."""
        after, previous = 0, GENESIS
        if start > 1:
            trusted = self.snap.chain_before(start)
            if trusted is not None:
                after, previous = int(trusted[0]), bytes(trusted[2])
        self.start = after + 1
        self._note_head(after, previous, 0)
        for anchor in (a for a in self.anchors if a.position <= after):
            row = self.snap.chain_row(anchor.position)
            if not self._check_anchor(anchor, None if row is None else bytes(row[2]), final=True):
                return
        events = self.snap.events(after)
        chain = self.snap.chain(after)
        try:
            self._loop(events, chain, previous, [a for a in self.anchors if a.position > after])
        finally:
            for rows in (events, chain):
                close = getattr(rows, "close", None)
                if close is not None:
                    close()

    def _loop(  # noqa: PLR0911, PLR0912 - the hot loop stays one function: no call per event
        self, events: Iterator[EventRow], chain: Iterator[ChainRow], previous: bytes, anchors: list[Anchor]
    ) -> None:
        """The hot loop: two SHA-256 computations and a few comparisons per event."""
        tag, u32, u64, hasher = EVENT_TAG, Struct(">I").pack, Struct(">Q").pack, sha256
        hex_length = u32(32)
        never = 1 << 63
        pending_at = never
        stop = anchors[0].position if anchors else never
        last = self.start - 1
        count = 0
        ev: EventRow | None = None
        try:
            for ev, ch in zip_longest(events, chain):
                if ev is None or ch is None or ev[0] != ch[0]:
                    self._misaligned(ev, ch, previous, last)
                    return
                position, oid, version, topic, state = ev
                oid_bytes = oid.encode()
                name = topic.encode()
                digest = hasher(
                    tag
                    + (hex_length if len(oid_bytes) == 32 else u32(len(oid_bytes)))
                    + oid_bytes
                    + u64(version)
                    + u32(len(name))
                    + name
                    + u64(len(state))
                    + state
                ).digest()
                if digest != ch[1]:
                    self._content_mismatch(ev, ch, digest, previous)
                    return
                linked = hasher(previous + u64(position) + digest).digest()
                if linked != ch[2]:
                    self._chain_mismatch(ev, ch, linked, last)
                    return
                previous, last = linked, position
                count += 1
                if position >= stop:
                    # An anchor's position is reached or passed, or an unmatched seal's own event checked.
                    self._note_head(last, previous, count)
                    if position >= pending_at and self._pending is not None:
                        self.problem = self._pending[0]
                        return
                    while anchors and anchors[0].position <= position:
                        anchor = anchors.pop(0)
                        if not self._check_anchor(anchor, previous if anchor.position == position else None):
                            return
                    pending_at = self._pending[1] if self._pending is not None else never
                    stop = min(anchors[0].position if anchors else never, pending_at)
        except (TypeError, AttributeError, ValueError, OverflowError) as error:
            # A value of a type the store never writes (NULL, a number for a text): a tamperer's hand.
            assert ev is not None  # noqa: S101 - the error came from hashing a row
            self._event_problem(
                Kind.CHANGED, ev, f"event changed at position {ev[0]}: the row holds a value of the wrong type",
                "the types the store writes", str(error),
            )
            return
        finally:
            self._note_head(last, previous, count)
        if self._pending is not None:
            self.problem = self._pending[0]
            return
        for anchor in anchors:
            if not self._check_anchor(anchor, None, final=True):
                return

    def _note_head(self, last: int, previous: bytes, count: int) -> None:
        self.count = count
        if last >= 1:
            self.head_position, self.head_hash = last, previous.hex()

    # -- anchors (seals and --expect) ---------------------------------------------------------------

    def _check_anchor(self, anchor: Anchor, found: bytes | None, *, final: bool = False) -> bool:
        """Compare an anchor with the chain hash at its position (None: no chained event there).

        Returns whether the walk goes on. An unmatched seal waits (see ``_pending``) unless
        ``final``; an unmatched ``--expect`` stops the walk at once: it comes from outside.
        """
        if anchor.seal is None:
            self.expectations_checked += 1
        else:
            self.seals_checked += 1
        if found is not None and found.hex() == anchor.chain_hash:
            return True
        if found is not None:
            found_text = f"chain hash {found.hex()}"
        elif self.head_position is not None and anchor.position > self.head_position:
            found_text = f"no event at position {anchor.position}: the log ends at {self.head_position}"
        else:
            found_text = f"no chained event at position {anchor.position}"
        if anchor.seal is None:
            problem = Problem(
                Kind.EXPECT, anchor.position,
                f"the expected chain hash at position {anchor.position} does not match: the log up to there "
                "is not the one the hash was taken from",
                f"chain hash {anchor.chain_hash}", found_text,
            )
        else:
            sealed = anchor.seal
            problem = Problem(
                Kind.SEAL, anchor.position,
                f"{anchor.source} ({sealed.sealed_at.isoformat()} by {sealed.sealed_by}) does not match position "
                f"{anchor.position}: the log up to there was rewritten after it was sealed",
                f"chain hash {anchor.chain_hash}", found_text,
            )
        if anchor.seal is None or final:
            self.problem = self._pending[0] if self._pending is not None else problem
            return False
        if self._pending is None:
            self._pending = (problem, anchor.seal.recorded_at)
        return True

    # -- naming what went wrong -----------------------------------------------------------------------

    def _event_problem(self, kind: Kind, ev: EventRow, summary: str, expected: str, found: str) -> None:
        position, oid, version, topic, _ = ev
        problem = Problem(kind, position, summary, expected, found, oid, _type_of(topic), version)
        # An unmatched seal names an earlier position; its own event being altered is the exception.
        if self._pending is not None and position != self._pending[1]:
            problem = self._pending[0]
        self.problem = problem

    @staticmethod
    def _describe(ev: EventRow) -> str:
        _, oid, version, topic, _ = ev
        return f"{_type_of(topic)} of aggregate {oid}, version {version}"

    def _content_mismatch(self, ev: EventRow, ch: ChainRow, digest: bytes, previous: bytes) -> None:
        position = ev[0]
        recorded = bytes(ch[1])
        if link(previous, position, digest) == bytes(ch[2]):
            self._event_problem(
                Kind.CHAIN, ev,
                f"the chain table was altered at position {position}: its event hash column changed, while the "
                f"event ({self._describe(ev)}) still matches the chain hash",
                f"event hash {digest.hex()}", f"event hash {recorded.hex()} in the chain table",
            )
            return
        elsewhere = [p for p in self.snap.positions_of_event_hash(digest) if p != position]
        if elsewhere:
            self._event_problem(
                Kind.MOVED, ev,
                f"event moved at position {position}: {self._describe(ev)} is the event the chain records at "
                f"position {elsewhere[0]} (rows moved or swapped)",
                f"the event recorded here (event hash {recorded.hex()})",
                f"the event of position {elsewhere[0]} (event hash {digest.hex()})",
            )
            return
        self._event_problem(
            Kind.CHANGED, ev,
            f"event changed at position {position}: {self._describe(ev)} no longer matches its recorded hash",
            f"event hash {recorded.hex()} (recorded when it was stored)", f"content hashing to {digest.hex()}",
        )

    def _chain_mismatch(self, ev: EventRow, ch: ChainRow, linked: bytes, last: int) -> None:
        position = ev[0]
        expected, found = f"chain hash {linked.hex()}", f"chain hash {bytes(ch[2]).hex()} in the chain table"
        if position - last > 1:
            # Positions missing from both tables, and the chain after them no longer follows: rows
            # were removed together with their chain rows (a gap alone is normal on PostgreSQL).
            missing = f"position {last + 1}" if position - last == 2 else f"positions {last + 1}..{position - 1}"
            problem = Problem(
                Kind.DELETED, last + 1,
                f"event deleted at {missing}, together with its chain row: the chain hash recorded at position "
                f"{position} ({self._describe(ev)}) follows from something no longer there, not from position {last}",
                expected, found,
            )
            self.problem = self._pending[0] if self._pending is not None else problem
            return
        self._event_problem(
            Kind.CHAIN, ev,
            f"the chain breaks at position {position} ({self._describe(ev)}): its recorded chain hash does not "
            f"follow from position {last} and the event: the chain table was altered",
            expected, found,
        )

    def _misaligned(self, ev: EventRow | None, ch: ChainRow | None, previous: bytes, last: int) -> None:
        if ev is not None and (ch is None or ev[0] < ch[0]):
            self._unchained(ev, ch, previous, last)
            return
        assert ch is not None  # noqa: S101 - zip_longest gives at least one of the two
        position = int(ch[0])
        problem = Problem(
            Kind.DELETED, position,
            f"event deleted at position {position}: the chain records an event there, the events table has none",
            f"an event with event hash {bytes(ch[1]).hex()}", "no event",
        )
        self.problem = self._pending[0] if self._pending is not None else problem

    def _unchained(self, ev: EventRow, ch: ChainRow | None, previous: bytes, last: int) -> None:
        """An event with no chain row: inserted, unless only its chain row was removed."""
        position = ev[0]
        if ch is None:
            self._event_problem(
                Kind.INSERTED, ev,
                f"event inserted at position {position}: {self._describe(ev)} has no chain row; the chain ends "
                f"at position {last}",
                f"the log ending at position {last}", f"an event at position {position}",
            )
            return
        candidate = link(previous, position, event_hash(ev[1], ev[2], ev[3], bytes(ev[4])))
        if link(candidate, int(ch[0]), bytes(ch[1])) == bytes(ch[2]):
            self._event_problem(
                Kind.CHAIN, ev,
                f"the chain row of position {position} was removed from the chain table; the event "
                f"({self._describe(ev)}) still fits the chain around it",
                f"a chain row at position {position}", "none",
            )
            return
        self._event_problem(
            Kind.INSERTED, ev,
            f"event inserted at position {position}: {self._describe(ev)} has no chain row "
            f"(the chain goes from position {last} to {ch[0]})",
            "no event at this position", "an event with no chain row",
        )


def describe(result: Verification) -> list[tuple[str, Any]]:
    """The result as (field, value) rows for a table."""
    rows: list[tuple[str, Any]] = [("store", result.store)]
    if result.problem is None:
        rows += [
            ("verdict", "intact"),
            ("events checked", f"{result.events:,}" + (f" (from position {result.start})" if result.start > 1 else "")),
            ("head position", result.head_position if result.head_position is not None else "(empty log)"),
            ("head hash", result.head_hash or "-"),
            ("seals checked", result.seals),
            ("expected hashes checked", result.expectations),
        ]
    else:
        p = result.problem
        rows += [
            ("verdict", f"NOT INTACT: {p.kind.value}"),
            ("position", p.position),
            ("problem", p.summary),
        ]
        if p.event_type is not None:
            rows += [("event", f"{p.event_type} version {p.version}"), ("aggregate", p.aggregate_id)]
        rows += [
            ("expected", p.expected),
            ("found", p.found),
            ("events intact before it", f"{result.events:,}"),
        ]
    rows.append(("time", f"{result.seconds:.2f} s ({result.events_per_second:,.0f} events/s)"))
    return rows


def as_json(result: Verification) -> dict[str, Any]:
    """The result as plain data."""
    p = result.problem
    return {
        "store": result.store,
        "intact": result.intact,
        "start": result.start,
        "events": result.events,
        "head_position": result.head_position,
        "head_hash": result.head_hash,
        "seals": result.seals,
        "expectations": result.expectations,
        "seconds": round(result.seconds, 3),
        "problem": None if p is None else {
            "kind": p.kind.value,
            "position": p.position,
            "summary": p.summary,
            "expected": p.expected,
            "found": p.found,
            "aggregate_id": p.aggregate_id,
            "event_type": p.event_type,
            "version": p.version,
        },
    }


__all__ = ["Anchor", "ExpectError", "Kind", "Problem", "Verification", "as_json", "describe", "parse_expect", "verify"]
