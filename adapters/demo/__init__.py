"""The Lingshou County demo: the seed's county, 30 days of work, and the Cao case.

Everything goes through the application's use cases, in time order, with the time each
thing happened; the same seed and end date give the same county, event for event.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from adapters.demo.activity import Activity
from adapters.demo.cao import CAO_DAY, tell_cao_case
from adapters.demo.sim import WINDOW, DemoError, DemoResult, SeededIds, Simulation, local, register_county
from domain.application import PingjingApp
from domain.ids import LOCAL_TZ

DEFAULT_UNTIL = date(2021, 11, 30)
DAYS = 30

__all__ = ["DEFAULT_UNTIL", "DemoError", "DemoResult", "load_demo"]


def load_demo(
    app: PingjingApp,
    *,
    seed: int = 2021,
    until: date | None = None,
    days: int = DAYS,
    window: timedelta = WINDOW,
) -> DemoResult:
    """Load the demo into an empty store and return what was loaded.

    ``days`` and a wider ``window`` (fewer, larger transactions) scale the demo up for benchmarks.
    """
    existing = app.recorder.max_notification_id() or 0
    if existing:
        raise DemoError(f"the store already holds {existing} events; the demo loads into an empty store only")
    until = until or DEFAULT_UNTIL
    now = app.clock.now()
    today = now.astimezone(LOCAL_TZ).date()
    if until > today:
        raise DemoError(f"--until {until} is in the future (today is {today}); the demo only tells the past")
    first = until - timedelta(days=days - 1)
    rng = random.Random(seed)
    end = min(local(until, 23, 59), now)
    sim = Simulation(app, end, window)
    cao_start = local(CAO_DAY, 8)
    county = register_county(sim, rng, min(local(first, 8), cao_start) - timedelta(days=2))
    activity = Activity(sim, rng, county)
    for offset in range(days):
        activity.day(first + timedelta(days=offset))
    tell_cao_case(sim, county)
    # Reproducible ids for the demo; and no log line per generated command.
    saved_ids, saved_observers = app.ids, app.observers
    app.ids, app.observers = SeededIds(seed), []
    try:
        sim.run()
    finally:
        app.ids, app.observers = saved_ids, saved_observers
    sim.result.events = app.recorder.max_notification_id() or 0
    return sim.result
