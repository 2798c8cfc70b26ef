"""For analysts and notebooks: typed events with their positions, and views rebuilt in memory.

from adapters.bootstrap import bootstrap
from projections.analyst import events, rebuild_in_memory
from projections.rates import rates
from domain.rates import parse_period

app = bootstrap().app
for position, event in events(app, types={"Case.Closed"}):
    print(position, event.meta.occurred_at, event.resolution)
views = rebuild_in_memory(app, until_position=5000)
print(rates(views, "county", parse_period("2021-11")).as_dict())
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from domain.application import PingjingApp
from domain.sla import SlaPolicy
from projections import ALL
from projections.base import Projection
from projections.runner import Progress, Runner
from projections.store import ViewStore


def events(
    app: PingjingApp,
    *,
    start: int = 1,
    stop: int | None = None,
    types: Collection[str] = (),
) -> Iterator[tuple[int, Any]]:
    """``(position, event)`` in log order; ``types`` are names like ``Case.Opened``."""
    for position, event in app.iter_events(start=start):
        if stop is not None and position > stop:
            return
        if not types or type(event).__qualname__ in types:
            yield position, event


def rebuild_in_memory(
    app: PingjingApp,
    *,
    until_position: int | None = None,
    as_of: datetime | None = None,
    projections: Sequence[type[Projection]] = ALL,
    progress: Progress | None = None,
    policy: SlaPolicy | None = None,
) -> ViewStore:
    """Views rebuilt from scratch in a private memory database, up to a position or a moment."""
    views = ViewStore.in_memory()
    runner = Runner(app, views, projections, policy=policy)
    runner.catch_up(until_position=until_position, as_of=as_of, progress=progress)
    return views
