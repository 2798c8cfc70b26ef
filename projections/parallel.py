"""Rebuild several projections at once, one process each, the heaviest in several.

Projections are independent: each has its own tables and its own tracking position, and
each reads only the events of the aggregates it needs. Rebuilding them in separate
processes uses every core; each process decodes only its share of the log.

A shardable projection (the cases: each case folds on its own) is rebuilt in shares, one
process each: every share reads only its cases' events (picked in SQL, by the last hex digit
of the case id) and writes their rows, and its own position. When every share has reached the
end, the shares' positions become the projection's one position again. A rebuild stopped
before that leaves the shares stored; a runner then folds each share on from where it stands.
"""

from __future__ import annotations

import gc
import os
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
from projections.base import Share, tracking_name_of
from projections.runner import PAGE, Runner
from projections.store import ViewStore

#: Events folded per transaction by a share (a share keeps a page's rows in memory until it writes
#: them, and several shares run at once: memory is the sum).
SHARE_PAGE = PAGE // 4


def default_shares() -> int:
    """In how many processes a shardable projection is rebuilt: one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Rebuilt:
    """What one process rebuilt (or, merged, the processes of one projection's shares)."""

    name: str
    events: int
    seconds: float
    peak_rss_mb: float
    #: Of ``events``, those of the registry, which every share folds.
    registry_events: int = 0


def rebuild_one(
    env: dict[str, str],
    name: str,
    *,
    policy_toml: str | None = None,
    until_position: int | None = None,
    as_of: datetime | None = None,
    into: Path | None = None,
    share: Share | None = None,
    reset: bool = True,
) -> Rebuilt:
    """Drop (unless ``reset`` is False: done already) and rebuild one projection, or one share of it,
    in this process."""
    policy = SlaPolicy.from_toml(policy_toml) if policy_toml else None
    page = PAGE if share is None else SHARE_PAGE
    with _opened(env, into) as (app, views):
        runner = Runner(app, views, [BY_NAME[name]], policy=policy, page=page, share=share)
        if reset:
            runner.reset()
        started = time.perf_counter()
        with _collected_per_page() as collect:
            events = runner.catch_up(until_position=until_position, as_of=as_of, progress=collect)
        seconds = time.perf_counter() - started
    return Rebuilt(name, events, seconds, peak_rss_mb(), runner.registry_events)


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    ``VmHWM`` of ``/proc/self/status`` where there is one: the peak of the process's own
    memory. ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a process started by a large
    one (a benchmark that has just generated its store, a CLI that loaded a county) would
    report its parent's peak; it is the answer only where ``/proc`` is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _opened(env: dict[str, str], into: Path | None) -> Iterator[tuple[PingjingApp, ViewStore]]:
    """The application on ``env`` and its views (beside the events, or in the file ``into``), closed after."""
    app = PingjingApp(env=env, observers=[])
    views = ViewStore.sqlite_file(into) if into else ViewStore.beside(app)
    try:
        yield app, views
    finally:
        if into:
            views.close()
        app.close()


#: A page in so many, at least, is looked at by the cyclic garbage collector (see below).
COLLECT_EVERY = 8


@contextmanager
def _collected_per_page() -> Iterator[Callable[[int, int], None]]:
    """The cyclic garbage collector run at most once per page (the hook to give ``catch_up`` as
    progress), not every few hundred allocations.

    A rebuild allocates millions of objects and keeps many of them (every case folded so far),
    so the collector's automatic passes, full ones included, walk an ever larger heap again and
    again: a tenth of the time of a rebuild. Here it is off; after a page, what the page left
    is frozen (kept out of later passes). A pass over the page comes first on the first page, on
    every :data:`COLLECT_EVERY` th, and on every page after one whose pass found garbage: the
    folds leave none in cycles (objects without cycles are freed by reference counting as
    always), so the passes would walk a page's survivors for nothing, yet a fold that did leave
    some would have it freed page by page. Everything is as it was afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    pages = 0
    found = True

    def collect(_position: int, _head: int) -> None:
        nonlocal pages, found
        if found or pages % COLLECT_EVERY == 0:
            found = gc.collect() > 0
        pages += 1
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
    shares: int | None = None,
) -> list[Rebuilt]:
    """Rebuild ``names``, each in its own process, a shardable one in ``shares`` processes (by
    default :func:`default_shares`); returns what each projection did (the peak memory of a
    projection rebuilt in shares is their sum).

    ``progress`` is told, every ``poll`` seconds, how far the slowest projection has got: the
    positions are read from the tracking table the processes write.
    """
    count = default_shares() if shares is None else max(1, shares)
    # A projection rebuilt in shares is dropped here, once, before the processes start (its shares
    # share its tables), and its shares are laid out; so is the end every process stops at. Any
    # other is dropped by its own process, side by side with the others (dropping a large view
    # walks all its pages).
    sharded = [name for name in names if BY_NAME[name].shardable and count > 1]
    with _opened(env, into) as (app, views):
        if sharded:
            Runner(app, views, [BY_NAME[name] for name in sharded]).reset(shares=count)
        head = int(app.recorder.max_notification_id() or 0)
    stop = head if until_position is None else min(until_position, head)
    jobs = [
        (name, Share(index, count) if name in sharded else None)
        for name in names
        for index in range(count if name in sharded else 1)
    ]
    with ProcessPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [
            pool.submit(
                rebuild_one, env, name, policy_toml=policy_toml, until_position=stop, as_of=as_of, into=into,
                share=share, reset=share is None,
            )
            for name, share in jobs
        ]
        if progress is not None:
            _report(futures, env, names, into, progress, poll)
        done = [f.result() for f in futures]
    if sharded:
        _merge_shares(env, sharded, into)
    return _per_projection(names, done)


def _merge_shares(env: dict[str, str], names: list[str], into: Path | None) -> None:
    """Store each projection whose shares all reached the end as one whole again."""
    with _opened(env, into) as (_, views):
        for name in names:
            views.merge_shares(tracking_name_of(name))


def _per_projection(names: list[str], done: list[Rebuilt]) -> list[Rebuilt]:
    """One :class:`Rebuilt` per projection: its shares' events (the registry's counted once), the
    longest of their times, the sum of their peak memories."""
    merged = []
    for name in names:
        parts = [r for r in done if r.name == name]
        registry = max(r.registry_events for r in parts)
        merged.append(
            Rebuilt(
                name,
                sum(r.events - r.registry_events for r in parts) + registry,
                max(r.seconds for r in parts),
                sum(r.peak_rss_mb for r in parts),
                registry,
            )
        )
    return merged


def _report(
    futures: list[Future[Rebuilt]],
    env: dict[str, str],
    names: list[str],
    into: Path | None,
    progress: Callable[[int], None],
    poll: float,
) -> None:
    with _opened(env, into) as (_, views):
        while wait(futures, timeout=poll).not_done:
            # A projection rebuilt in shares stands where its slowest share does.
            progress(min(views.standing(tracking_name_of(name)) for name in names))
