"""The base of pingjing's aggregates: an event's timestamp is the moment it happened.

The library stamps each new event with the wall clock. Here every event carries
``meta.occurred_at``, decided by the command from the injectable clock, and the
library's timestamp is set to that same moment: replays, imports and the demo then
store exactly the same bytes for the same history.
"""

from __future__ import annotations

import inspect
from typing import Any, Self, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain.errors import OutOfOrderError


def _occurred_at(kwargs: dict[str, Any]) -> None:
    meta = kwargs.get("meta")
    if meta is not None and kwargs.get("timestamp") is None:
        kwargs["timestamp"] = meta.occurred_at


#: Per aggregate class: the parameters of its ``__init__`` (``self`` left out), and whether it takes ``id``.
_INIT_PARAMETERS: dict[type, tuple[tuple[str, ...], bool]] = {}
#: Aggregate classes by topic, as the created events name them.
_CLASSES: dict[str, Any] = {}


#: Per aggregate class: the named parameters of its ``create_id``.
_ID_PARAMETERS: dict[type, tuple[str, ...]] = {}


def _id_parameters(cls: type) -> tuple[str, ...]:
    known = _ID_PARAMETERS.get(cls)
    if known is None:
        parameters = inspect.signature(cls.create_id).parameters.values()  # type: ignore[attr-defined]
        known = _ID_PARAMETERS[cls] = tuple(
            p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )
    return known


def _init_parameters(cls: type) -> tuple[tuple[str, ...], bool]:
    known = _INIT_PARAMETERS.get(cls)
    if known is None:
        names = tuple(inspect.signature(cls.__init__).parameters)[1:]  # type: ignore[misc]
        known = _INIT_PARAMETERS[cls] = (tuple(n for n in names if n != "id"), "id" in names)
    return known


class DomainAggregate(Aggregate):
    """An aggregate whose events are stamped with their ``meta.occurred_at``.

    Creating one, and rebuilding one from its first event, take a shorter path than the
    library's, with the same outcome: the library works out on every call which of the
    event's fields each initialiser takes; here that is worked out once per class. (Every
    write creates aggregates, and every read of an aggregate replays its first event.)
    """

    class Created(Aggregate.Created):
        """The first event of an aggregate: it constructs the aggregate."""

        def mutate(self, aggregate: Any) -> Any:
            """The library's construction (``CanInitAggregate.mutate``), its argument lists worked out once."""
            state = self.__dict__
            topic = state["originator_topic"]
            cls = _CLASSES.get(topic)
            if cls is None:
                cls = _CLASSES[topic] = resolve_topic(topic)
            names, takes_id = _init_parameters(cls)
            agg = cls.__new__(cls)
            agg.__base_init__(state["originator_id"], state["originator_version"], state["timestamp"])
            arguments = {name: state[name] for name in names if name in state}
            if takes_id:
                arguments["id"] = state["originator_id"]
            agg.__init__(**arguments)
            self.apply(agg)
            return agg

    @classmethod
    def _create(cls, event_class: type[CanInitAggregate[Any]], **kwargs: Any) -> Self:
        """The library's ``_create``, for an aggregate whose id is a UUID (every one here)."""
        _occurred_at(kwargs)
        originator_id = kwargs.pop("id", None)
        if originator_id is None:
            names = _id_parameters(cls)
            originator_id = cls.create_id(**{name: kwargs[name] for name in names if name in kwargs})
        if type(originator_id) is not UUID or getattr(cls, "TOPIC", None):
            return super()._create(event_class, id=originator_id, **kwargs)
        kwargs["originator_topic"] = get_topic(cls)
        kwargs["originator_id"] = originator_id
        kwargs["originator_version"] = cls.INITIAL_VERSION
        if kwargs.get("timestamp") is None:
            kwargs["timestamp"] = event_class.create_timestamp()
        try:
            created = event_class(**kwargs)
        except TypeError as error:
            raise TypeError(f"Unable to construct '{event_class.__qualname__}' event: {error}") from error
        agg = cast(Self, created.mutate(None))
        agg.pending_events.append(created)
        return agg

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
