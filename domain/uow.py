"""A unit of work: the aggregates one or more commands load and change, saved together.

Several commands can share one unit of work (and so one transaction). Each command
runs between :meth:`begin` and :meth:`commit_point`; if it fails, :meth:`rollback`
puts every aggregate it touched back as it was, so a bad command never leaves half
its changes in the batch.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate

from domain.directory import Directory
from domain.errors import NotFoundError

A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    """Identity map over the repository, with per-command rollback."""

    def __init__(self, repository: Repository[UUID], directory: Directory | None = None) -> None:
        self._repository = repository
        self._directory = directory
        self._seen: dict[UUID, Aggregate] = {}
        # Ids whose object in _seen is the directory's shared copy (never to be changed).
        self._shared: set[UUID] = set()
        # Per command: id -> copy taken before the command first changed it (None: drop it).
        self._undo: dict[UUID, Aggregate | None] = {}

    def begin(self) -> None:
        """Start a command."""
        self._undo = {}

    def commit_point(self) -> frozenset[UUID]:
        """The current command succeeded; keep its changes. Returns the ids it may have changed."""
        touched = frozenset(self._undo)
        self._undo = {}
        return touched

    def rollback(self) -> frozenset[UUID]:
        """The current command failed; forget every change it made. Returns the ids it touched."""
        touched = frozenset(self._undo)
        for aggregate_id, before in self._undo.items():
            if before is None:
                self._seen.pop(aggregate_id, None)
                self._shared.discard(aggregate_id)
            else:
                self._seen[aggregate_id] = before
        self._undo = {}
        return touched

    def read(self, cls: type[A], aggregate_id: UUID, what: str, key: str) -> A:
        """An aggregate to look at only (no undo copy is taken)."""
        return self._load(cls, aggregate_id, what, key)

    def get(self, cls: type[A], aggregate_id: UUID, what: str, key: str) -> A:
        """An aggregate the current command may change."""
        known = aggregate_id in self._seen
        aggregate = self._load(cls, aggregate_id, what, key)
        if aggregate_id in self._shared:
            aggregate = copy.deepcopy(aggregate)
            self._seen[aggregate_id] = aggregate
            self._shared.discard(aggregate_id)
        if aggregate_id not in self._undo:
            self._undo[aggregate_id] = copy.deepcopy(aggregate) if known else None
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        """Whether the aggregate exists, in this unit of work, the directory or the store."""
        if aggregate_id in self._seen:
            return True
        if self._directory is not None and self._directory.get(aggregate_id) is not None:
            return True
        # One stored event says enough: nothing is decoded or folded (the repository's own
        # ``in`` would rebuild the whole aggregate only to throw it away).
        return bool(self._repository.event_store.recorder.select_events(aggregate_id, limit=1))

    def add(self, aggregate: Aggregate) -> None:
        """A new aggregate created by the current command."""
        self._seen[aggregate.id] = aggregate
        self._undo.setdefault(aggregate.id, None)

    def changed(self) -> list[Aggregate]:
        """Aggregates with events to save."""
        return [a for a in self._seen.values() if a.pending_events]

    def _load(self, cls: type[A], aggregate_id: UUID, what: str, key: str) -> A:
        aggregate: Any = self._seen.get(aggregate_id)
        if aggregate is None and self._directory is not None:
            aggregate = self._directory.get(aggregate_id)
            if aggregate is not None:
                self._seen[aggregate_id] = aggregate
                self._shared.add(aggregate_id)
        if aggregate is None:
            try:
                aggregate = self._repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise NotFoundError(what, key) from None
            self._seen[aggregate_id] = aggregate
        if not isinstance(aggregate, cls):
            raise NotFoundError(what, key)
        return aggregate
