"""Rebuild several projections at once, one process each.

Projections are independent: each has its own tables and its own tracking position, and
each reads only the events of the aggregates it needs. Rebuilding them in separate
processes uses every core; each process decodes only its share of the log.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from domain.application import PingjingApp
from domain.sla import SlaPolicy
from projections import BY_NAME
from projections.runner import Runner
from projections.store import ViewStore


@dataclass(frozen=True)
class Rebuilt:
    """What one process rebuilt."""

    name: str
    events: int
    seconds: float
    peak_rss_mb: float


def rebuild_one(
    env: dict[str, str],
    name: str,
    *,
    policy_toml: str | None = None,
    until_position: int | None = None,
    as_of: datetime | None = None,
    into: Path | None = None,
) -> Rebuilt:
    """Drop and rebuild one projection (in this process)."""
    app = PingjingApp(env=env, observers=[])
    views = ViewStore.sqlite_file(into) if into else ViewStore.beside(app)
    policy = SlaPolicy.from_toml(policy_toml) if policy_toml else None
    runner = Runner(app, views, [BY_NAME[name]], policy=policy)
    runner.reset()
    started = time.perf_counter()
    with _collected_per_page() as collect:
        events = runner.catch_up(until_position=until_position, as_of=as_of, progress=collect)
    seconds = time.perf_counter() - started
    if into:
        views.close()
    app.close()
    return Rebuilt(name, events, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


@contextmanager
def _collected_per_page() -> Iterator[Callable[[int, int], None]]:
    """The cyclic garbage collector run once per page (the hook to give ``catch_up`` as progress),
    not every few hundred allocations.

    A rebuild allocates millions of objects and keeps many of them (every case folded so far),
    so the collector's automatic passes, full ones included, walk an ever larger heap again and
    again: a tenth of the time of a rebuild. Here it is off; after each page one pass frees what
    that page left in cycles, and what survives it is frozen (kept out of later passes). Memory
    is not at stake: objects without cycles are freed by reference counting as always, and
    cyclic garbage lives at most one page. Everything is as it was afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()

    def collect(_position: int, _head: int) -> None:
        gc.collect()
        gc.freeze()

    try:
        yield collect
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def rebuild_in_parallel(
    env: dict[str, str],
    names: list[str],
    *,
    policy_toml: str | None = None,
    until_position: int | None = None,
    as_of: datetime | None = None,
    into: Path | None = None,
    progress: Callable[[int], None] | None = None,
    poll: float = 0.5,
) -> list[Rebuilt]:
    """Rebuild ``names``, each in its own process; returns what each did.

    ``progress`` is told, every ``poll`` seconds, how far the slowest projection has got: the
    positions are read from the tracking table the processes write.
    """
    # Create the tracking table once, before the processes race to create it.
    if into is not None:
        ViewStore.sqlite_file(into).close()
    else:
        app = PingjingApp(env=env, observers=[])
        ViewStore.beside(app)
        app.close()
    with ProcessPoolExecutor(max_workers=len(names)) as pool:
        futures = [
            pool.submit(
                rebuild_one, env, name, policy_toml=policy_toml, until_position=until_position, as_of=as_of,
                into=into,
            )
            for name in names
        ]
        if progress is not None:
            _report(futures, env, names, into, progress, poll)
        return [f.result() for f in futures]


def _report(
    futures: list[Future[Rebuilt]],
    env: dict[str, str],
    names: list[str],
    into: Path | None,
    progress: Callable[[int], None],
    poll: float,
) -> None:
    app = PingjingApp(env=env, observers=[])
    views = ViewStore.sqlite_file(into) if into else ViewStore.beside(app)
    try:
        while wait(futures, timeout=poll).not_done:
            progress(min(views.position(f"pingjing.{name}") for name in names))
    finally:
        if into:
            views.close()
        app.close()
