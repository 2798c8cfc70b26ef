"""What a projection is: tables, a fold of events into them, and a flush per batch.

A projection keeps what it needs in memory while a batch is applied and writes the rows
the batch changed in :meth:`Projection.flush`, inside the transaction that also records
its position. It never writes events and never reads the clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from domain.sla import SlaPolicy, WorkingCalendar
from projections.registry import Registry
from projections.store import Cursor, ViewStore


@dataclass
class Context:
    """What projections share: the registry of units and officers, the SLA policy and calendar,
    and a way to load an aggregate as it stood at a version (to resume after a restart)."""

    registry: Registry
    policy: SlaPolicy
    calendar: WorkingCalendar
    load_case: Callable[[UUID, int], Any]


class Projection(ABC):
    """A read model fed from the event log."""

    #: Name of the projection: its tracking key and ``--only`` name.
    name: ClassVar[str]
    #: CREATE TABLE / CREATE INDEX statements (portable SQLite / PostgreSQL).
    schema: ClassVar[tuple[str, ...]]
    #: Tables dropped on a rebuild from scratch.
    tables: ClassVar[tuple[str, ...]]
    #: Aggregate classes whose events this projection reads (the runner reads nothing else).
    sources: ClassVar[tuple[type, ...]]

    def __init__(self, views: ViewStore, context: Context) -> None:
        self.views = views
        self.context = context

    @property
    def tracking_name(self) -> str:
        """The key of this projection's position in the tracking table."""
        return f"pingjing.{self.name}"

    @abstractmethod
    def apply(self, position: int, event: Any) -> None:
        """Fold one event in (in memory)."""

    @abstractmethod
    def flush(self, cur: Cursor) -> None:
        """Write what the batch changed."""

    def forget(self) -> None:  # noqa: B027 - optional hook, most projections keep nothing
        """Drop in-memory state (after a failed batch, before a rebuild)."""
