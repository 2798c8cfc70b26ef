"""The base of pingjing's aggregates: an event's timestamp is the moment it happened.

The library stamps each new event with the wall clock. Here every event carries
``meta.occurred_at``, decided by the command from the injectable clock, and the
library's timestamp is set to that same moment: replays, imports and the demo then
store exactly the same bytes for the same history.
"""

from __future__ import annotations

from typing import Any, Self

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate
from eventsourcing.utils import get_topic

from domain.errors import OutOfOrderError


def _occurred_at(kwargs: dict[str, Any]) -> None:
    meta = kwargs.get("meta")
    if meta is not None and kwargs.get("timestamp") is None:
        kwargs["timestamp"] = meta.occurred_at


class DomainAggregate(Aggregate):
    """An aggregate whose events are stamped with their ``meta.occurred_at``."""

    @classmethod
    def _create(cls, event_class: type[CanInitAggregate[Any]], **kwargs: Any) -> Self:
        _occurred_at(kwargs)
        return super()._create(event_class, **kwargs)

    def trigger_event(self, event_class: type[CanMutateAggregate[Any]], **kwargs: Any) -> None:
        """Trigger ``event_class`` with the timestamp of its metadata; history only moves forward."""
        _occurred_at(kwargs)
        moment = kwargs.get("timestamp")
        if moment is not None and moment < self.modified_on:
            raise OutOfOrderError(
                f"{self.label}: {moment.isoformat()} is before its latest event ({self.modified_on.isoformat()})"
            )
        super().trigger_event(event_class, **kwargs)

    @property
    def label(self) -> str:
        """How refusals name this aggregate (e.g. ``case PJ-20211109-ABC123``)."""
        for attr, what in (("ref", "case"), ("badge", "officer"), ("code", "unit")):
            value = getattr(self, attr, None)
            if isinstance(value, str):
                return f"{what} {value}"
        return f"{type(self).__name__.lower()} {self.id}"


def event_topics(*aggregates: type[Aggregate]) -> list[str]:
    """The stored topics of every event class the given aggregates define."""
    topics = set()
    for cls in aggregates:
        for value in vars(cls).values():
            if isinstance(value, type) and issubclass(value, cls.Event) and value is not cls.Event:
                topics.add(get_topic(value))
    return sorted(topics)
