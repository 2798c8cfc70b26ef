"""Ingest throughput: ratings through the application into a durable store.

85 % of the ratings are satisfied (one event); 15 % are dissatisfied, opening a case
and pushing it in the same transaction (three events). The measured path shares one
transaction among many commands (group commit); the baseline saves every event on its
own, as a naive event store client would.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from dataclasses import dataclass
from typing import Any

from adapters.heap import settle
from adapters.store import resolve
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.uow import UnitOfWork
from domain.usecases import HANDLERS, Work
from domain.values import Actor, Channel, Role

ADMIN = Context(Actor("bench", Role.ADMIN))
CITIZEN = Context(Actor("anonymous", Role.CITIZEN), Channel.QR)
UNITS = 16
OFFICERS_PER_UNIT = 12
BATCH = 500


@dataclass(frozen=True)
class Throughput:
    """Events per second over a run."""

    commands: int
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """The figure."""
        return self.events / self.seconds


def _badge(unit: int, officer: int) -> str:
    return f"B{unit:02d}{officer:03d}"


def badges_of_county() -> list[str]:
    """The badges :func:`register_county` registers."""
    return [_badge(u, o) for u in range(UNITS) for o in range(OFFICERS_PER_UNIT)]


def register_county(app: PingjingApp) -> list[str]:
    """Units and officers to rate; returns the badges."""
    badges = []
    items: list[tuple[c.Command, Context]] = [(c.RegisterUnit(code="BENCH", unit_name="县局", kind="bureau"), ADMIN)]
    for u in range(UNITS):
        code = f"U{u:02d}"
        items.append(
            (c.RegisterUnit(code=code, unit_name=f"派出所{u}", kind="police_station", parent_code="BENCH"), ADMIN)
        )
        for o in range(OFFICERS_PER_UNIT):
            badge = _badge(u, o)
            badges.append(badge)
            items.append(
                (c.RegisterOfficer(badge=badge, officer_name=f"民警{badge}", kind="police", unit_code=code), ADMIN)
            )
    app.execute_batch(items)
    return badges


def ratings(badges: list[str], n: int, seed: int) -> list[c.SubmitRating]:
    """``n`` ratings, 15 % dissatisfied with a complaint and a phone."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        unhappy = rng.random() < 0.15
        out.append(
            c.SubmitRating(
                target="officer",
                key=rng.choice(badges),
                verdict="dissatisfied" if unhappy else "satisfied",
                service_score=2 if unhappy else 5,
                attitude_score=2 if unhappy else 5,
                efficiency_score=2 if unhappy else 4,
                complaint="等了一个多小时没人处理" if unhappy else None,
                phone="13800138000" if unhappy else None,
            )
        )
    return out


def grouped(app: PingjingApp, commands: list[c.SubmitRating]) -> Throughput:
    """Group commit: ``BATCH`` commands per transaction, each validated and answered alone."""
    before = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    for i in range(0, len(commands), BATCH):
        outcomes = app.execute_batch([(cmd, CITIZEN) for cmd in commands[i : i + BATCH]])
        if any(not hasattr(o, "command") for o in outcomes):
            raise RuntimeError(f"a benchmark command failed: {outcomes}")
    seconds = time.perf_counter() - started
    return Throughput(len(commands), (app.recorder.max_notification_id() or 0) - before, seconds)


def one_save_per_event(app: PingjingApp, commands: list[c.SubmitRating]) -> Throughput:
    """The naive path: decide each command, then save each of its events in its own transaction."""
    before = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    for cmd in commands:
        uow = UnitOfWork(app.repository)
        meta = app._meta(CITIZEN)
        HANDLERS[type(cmd)](Work(uow, meta, CITIZEN.actor, app.ids), cmd)
        for aggregate in uow.changed():
            for event in aggregate.collect_events():
                app.save(event)
    seconds = time.perf_counter() - started
    return Throughput(len(commands), (app.recorder.max_notification_id() or 0) - before, seconds)


def one_command_per_transaction(app: PingjingApp, commands: list[c.SubmitRating]) -> Throughput:
    """Each command in its own transaction (what a single HTTP request does without grouping)."""
    before = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    for cmd in commands:
        app.execute(cmd, CITIZEN)
    seconds = time.perf_counter() - started
    return Throughput(len(commands), (app.recorder.max_notification_id() or 0) - before, seconds)


def _writer(database: str, n: int, seed: int, start: Any, results: Any) -> None:
    """One writer process: the application on ``database``; at the start, ``n`` ratings group-committed."""
    app = PingjingApp(env=resolve(database).env, observers=[])
    try:
        commands = ratings(badges_of_county(), n, seed)
        settle()  # as the one-process figure, and as serve's workers
        start.wait()
        grouped(app, commands)
        results.put(time.perf_counter())
    finally:
        app.close()


def grouped_in_processes(app: PingjingApp, database: str, n: int, processes: int) -> Throughput:
    """Group commit from ``processes`` writer processes at once on one store (as ``serve --workers``
    runs): each decides and encodes its own batches, and they take turns to write them.

    The county must be registered (:func:`register_county`). Timed from the common start to
    the last writer's end; the events are those the log gained.
    """
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    before = app.recorder.max_notification_id() or 0
    share = n // processes
    workers = [
        ctx.Process(target=_writer, args=(database, share, 100 + k, start, results)) for k in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait(timeout=120)  # every writer has opened the store and made its commands
    started = time.perf_counter()
    ends = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a writer process failed (exit code {worker.exitcode})")
    return Throughput(share * processes, (app.recorder.max_notification_id() or 0) - before, max(ends) - started)
