"""Aggregates are created, and rebuilt from their first event, exactly as the library would.

:class:`DomainAggregate` works out once per class which of an event's fields its
initialiser takes, where the library works it out on every call. Every first event of a
story that touches every kind of aggregate is replayed both ways, and created again both
ways, and the outcomes compared field by field.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanInitAggregate

from domain.aggregate import DomainAggregate
from tests.conftest import START, County, make_app
from tests.fakes import FakeClock
from tests.projections.test_runner import tell_a_story

_ORIGINATOR = ("originator_id", "originator_version", "originator_topic")


@pytest.fixture(scope="module")
def first_events() -> list[Any]:
    """The first event of every aggregate of a story (a memory store)."""
    clock = FakeClock(START)
    app = make_app("memory", clock)
    try:
        tell_a_story(County(app, clock).setup())
        events = [event for _, event in app.iter_events(batch=1000)]
    finally:
        app.close()
    return [e for e in events if isinstance(e, CanInitAggregate)]


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def test_the_story_creates_every_kind_of_aggregate(first_events: list[Any]) -> None:
    kinds = {type(e).__qualname__.split(".")[0] for e in first_events}
    assert {"Rating", "Case", "Officer", "Unit"} <= kinds, kinds


def test_replaying_a_first_event_builds_what_the_library_builds(first_events: list[Any]) -> None:
    for event in first_events:
        ours = event.mutate(None)
        library = CanInitAggregate.mutate(event, None)
        assert type(ours) is type(library)
        assert _state(ours) == _state(library), type(event).__qualname__


def test_creating_an_aggregate_makes_what_the_library_makes(first_events: list[Any]) -> None:
    for event in first_events:
        cls = type(event.mutate(None))
        assert issubclass(cls, DomainAggregate)
        fields = {k: v for k, v in vars(event).items() if k not in _ORIGINATOR}
        ours = cls._create(type(event), id=event.originator_id, **fields)
        library = super(DomainAggregate, cls)._create(type(event), id=event.originator_id, **dict(fields))
        assert _state(ours) == _state(library), type(event).__qualname__
        (mine,), (theirs,) = ours.collect_events(), library.collect_events()
        assert type(mine) is type(theirs)
        assert vars(mine) == vars(theirs)
        assert vars(mine) == vars(event), "the same event as the one stored"


class Tally(DomainAggregate):
    """An aggregate whose id the library makes (none here are made so)."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_an_aggregate_without_an_id_given_is_left_to_the_library() -> None:
    tally = Tally(name="x")
    assert isinstance(tally.id, UUID)
    assert tally.name == "x"
    (created,) = tally.collect_events()
    assert vars(created.mutate(None)) | {"_pending_events": []} == vars(tally) | {"_pending_events": []}
