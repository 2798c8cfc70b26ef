"""What a projection is: tables, a fold of events into them, and a flush per batch.

A projection keeps what it needs in memory while a batch is applied and writes the rows
the batch changed in :meth:`Projection.flush`, inside the transaction that also records
its position. It never writes events and never reads the clock.

A projection that needs only a few fields of some events may offer :meth:`Projection.readers`:
the runner then hands it, for those topics, what the reader made of the stored fields
instead of a domain event (cheaper to replay). ``apply`` must still take the domain
event of those topics: the runner passes it whenever a row cannot be read so (an older
version of the event to upcast, a cipher, a run "as of" a moment).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
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
    #: Moves on whenever the registry changes (or is replaced): what a projection derived from
    #: it (scopes, codes) is stale when this has moved.
    registry_changes: int = 0


#: Makes what ``apply`` takes from a row's parsed stored fields (typed values as stored,
#: ``{"_type_", "_data_"}``) and the row's originator id (a UUID, or its text).
Reader = Callable[[dict[str, Any], Any], Any]


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

    def readers(self) -> Mapping[str, Reader]:
        """Topics this projection can fold from a few stored fields, with the reader of each."""
        return {}

    @abstractmethod
    def apply(self, position: int, event: Any) -> None:
        """Fold one event (or what a reader made of it) in, in memory."""

    @abstractmethod
    def flush(self, cur: Cursor) -> None:
        """Write what the batch changed."""

    def forget(self) -> None:  # noqa: B027 - optional hook, most projections keep nothing
        """Drop in-memory state (after a failed batch, before a rebuild)."""
