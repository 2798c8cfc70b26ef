"""The directory: units, officers and QR identities, kept current by following the log.

Almost every command looks up a unit or an officer, and they change rarely. Instead of
loading each one from its events on every command, the directory keeps them in memory
and catches up with the log once per batch: one query for everything that changed.
It is shared and read-only; a command that changes one gets its own copy.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from domain.aggregate import event_topics
from domain.registry import Officer, QrIdentity, Unit

_PAGE = 5000


class Directory:
    """In-memory units, officers and QR identities as of the last catch-up."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._topics = event_topics(Unit, Officer, QrIdentity)
        self._aggregates: dict[UUID, Any] = {}
        self._position = 0
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        """Apply every directory event recorded since the last catch-up."""
        with self._lock:
            top = self._recorder.max_notification_id() or 0
            while self._position < top:
                page = self._recorder.select_notifications(
                    start=self._position + 1, limit=_PAGE, stop=top, topics=self._topics
                )
                for notification in page:
                    event: Any = self._mapper.to_domain_event(notification)
                    current = self._aggregates.get(event.originator_id)
                    if current is not None and event.originator_version <= current.version:
                        continue
                    self._aggregates[event.originator_id] = event.mutate(current)
                self._position = page[-1].id if len(page) == _PAGE else top

    def get(self, aggregate_id: UUID) -> Any | None:
        """The shared, read-only aggregate, or None if the directory does not know it."""
        return self._aggregates.get(aggregate_id)

    def __len__(self) -> int:
        return len(self._aggregates)
