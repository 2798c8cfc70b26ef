"""What a projection is: tables, a fold of events into them, and a flush per batch.

A projection keeps what it needs in memory while a batch is applied and writes the rows
the batch changed in :meth:`Projection.flush`, inside the transaction that also records
its position. It never writes events and never reads the clock.

A projection that needs only a few fields of some events may offer :meth:`Projection.readers`:
the runner then hands it, for those topics, what the reader made of the stored fields
instead of a domain event (cheaper to replay). ``apply`` must still take the domain
event of those topics: the runner passes it whenever a row cannot be read so (an older
version of the event to upcast, a cipher, a run "as of" a moment).

A projection whose aggregates fold independently of one another may be **shardable**: a
rebuild then runs it in several processes, each folding only the aggregates whose id falls
in its :class:`Share`, each with a tracking position of its own. Its counts are deltas added
to the table, so the shares' counts add up to what one process writes.
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


#: At most this many shares: the last hex digit of an id picks its share.
MAX_SHARES = 16


@dataclass(frozen=True)
class Share:
    """One of ``count`` shares of a shardable projection: the aggregates whose id's last hex digit,
    modulo ``count``, is ``index``. (The runner's queries pick the same rows in SQL.)"""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count <= MAX_SHARES:
            msg = f"share {self.index} of {self.count} does not exist (at most {MAX_SHARES} shares)"
            raise ValueError(msg)

    @property
    def suffix(self) -> str:
        """What a share's tracking name adds to its projection's (``/0/2``)."""
        return f"/{self.index}/{self.count}"

    @property
    def digits(self) -> tuple[str, ...]:
        """The last hex digits of the ids in this share, as text (both cases)."""
        mine = [f"{digit:x}" for digit in range(16) if digit % self.count == self.index]
        return tuple(sorted({*mine, *(d.upper() for d in mine)}))

    def holds(self, originator_id: Any) -> bool:
        """Whether the aggregate of this id (a UUID, or its text as a row gives it) is in this share."""
        last = int(originator_id[-1], 16) if type(originator_id) is str else originator_id.int & 0xF
        return bool(last % self.count == self.index)


def tracking_name_of(name: str) -> str:
    """The key of a projection's position in the tracking table (a share's adds :attr:`Share.suffix`)."""
    return f"pingjing.{name}"


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
    #: The shape of its tables: raised whenever they change, so that a store holding rows of
    #: another shape has them dropped and rebuilt (:meth:`projections.store.ViewStore.upgrade`).
    version: ClassVar[int] = 1
    #: Whether each aggregate of ``sources`` folds on its own (rows and memory of its own, counts
    #: added up), so that the projection can be rebuilt in :class:`Share` s.
    shardable: ClassVar[bool] = False

    def __init__(self, views: ViewStore, context: Context, share: Share | None = None) -> None:
        if share is not None and not self.shardable:
            msg = f"the {self.name} projection cannot be folded in shares"
            raise ValueError(msg)
        self.views = views
        self.context = context
        #: The aggregates this instance folds (None: all of them).
        self.share = share

    @property
    def tracking_name(self) -> str:
        """The key of this projection's (or this share's) position in the tracking table."""
        name = tracking_name_of(self.name)
        return name if self.share is None else name + self.share.suffix

    def readers(self) -> Mapping[str, Reader]:
        """Topics this projection can fold from a few stored fields, with the reader of each."""
        return {}

    @abstractmethod
    def apply(self, position: int, event: Any) -> None:
        """Fold one event (or what a reader made of it) in, in memory."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Make the rows :meth:`flush` is to write, before the page's write transaction begins.

        A write transaction holds the store's one write lock from its start (processes writing the
        same file take turns), so what can be made beforehand is. :meth:`flush` writes what this
        made (or makes it then, when this was not called).
        """

    @abstractmethod
    def flush(self, cur: Cursor) -> None:
        """Write what the batch changed."""

    def forget(self) -> None:  # noqa: B027 - optional hook, most projections keep nothing
        """Drop in-memory state (after a failed batch, before a rebuild)."""
