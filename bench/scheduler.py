"""The SLA clock at scale: 100,000 open cases with pending deadlines.

The store holds a registered county and ``N`` cases opened from the hotline and pushed,
spread evenly over the day before :data:`ORIGIN`, so that every case has its contact
(24 h) and feedback (3 working days) clocks running at the origin, and contact warnings
and breaches come due at a steady rate from there on; the warnings that fell before the
origin were recorded, as a scheduler running then would have. It is made once and kept
under ``var/bench/``; each run works on a copy, since running the scheduler writes to it.

In a child process of its own (so that its peak memory is its own), the scheduler
starts on a copy with a clock whose domain time runs :data:`FACTOR` times faster than the
wall clock from :data:`ORIGIN`, so that a few thousand warnings and breaches come due in
:data:`RUN_SECONDS` of real time. It measures:

- the start: from constructing the application, views, runner, keeper and service to the
  first tick as leader having set the next wake-up (the ledger already caught up; a cold
  start rebuilds the ledger from scratch first);
- the peak resident memory of that process;
- for every contact deadline that fell after the start, the real time from the deadline
  to the transaction that recorded its breach (an observer on the application notes when
  each breach was committed), checked against the breaches stored in the ledger.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters import logging as pj_logging
from adapters.privacy.master import DEFAULT_NAME
from adapters.store import resolve
from bench.ingest import UNITS, register_county
from domain import commands as c
from domain.application import Context, Executed, PingjingApp
from domain.errors import ConflictError, PingjingError
from domain.values import Actor, Channel, Role
from projections import ALL
from projections.board import from_opt, from_ts, ts
from projections.parallel import peak_rss_mb
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.leader import FileLeadership
from scheduler.service import SchedulerService

#: 2: made with the hash chain and sealed contacts (a store of version 1 would be chained on first
#: open, and its contacts read in clear, not decrypted, which a real rebuild does).
GENERATOR_VERSION = 2
#: The master data key's file, beside a SQLite store.
DATA_KEY_FILE = DEFAULT_NAME
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: The first case is opened at the start of Monday 1 November 2021 (Shanghai).
OPENED_FROM = datetime(2021, 11, 1, 0, 0, tzinfo=SHANGHAI)
#: The contact limit (DESIGN §5): the first breach falls this long after the first opening.
CONTACT_LIMIT = timedelta(hours=24)
#: Domain time from the origin to the first contact deadline: the start happens before it.
LEAD = timedelta(minutes=5)
#: Where the scheduler's clock starts; every case was opened before it, evenly spread.
ORIGIN = OPENED_FROM + CONTACT_LIMIT - LEAD
#: Domain seconds per real second: with 100,000 cases about 70 contact warnings and 70
#: breaches come due per real second, the first breach 5 s after the origin.
FACTOR = 60.0
#: Real seconds the scheduler runs after starting.
RUN_SECONDS = 45.0
#: Cases opened per transaction while making the store.
BATCH = 500

OFFICE = Context(Actor("bench-dc", Role.SUPERVISOR), Channel.HOTLINE)


class FixedClock:
    """A clock that stays at one moment (making the store)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        """The moment."""
        return self.moment


class CompressedClock:
    """Domain time that runs ``factor`` times faster than the wall clock, from ``origin``.

    ``origin`` is the domain time when the clock is made (or at ``wall_origin``);
    :meth:`wall` maps a domain moment to the wall-clock moment at which this clock
    reaches it, for :class:`~scheduler.service.SchedulerService`'s ``wall``.
    """

    def __init__(self, origin: datetime, factor: float, *, wall_origin: datetime | None = None) -> None:
        if origin.tzinfo is None:
            raise ValueError("CompressedClock needs an aware origin")
        if factor <= 0:
            raise ValueError(f"factor must be positive, not {factor}")
        self.origin = origin
        self.factor = factor
        self.wall_origin = wall_origin or datetime.now(UTC)

    def now(self) -> datetime:
        """The domain time now."""
        return self.domain(datetime.now(UTC))

    def domain(self, wall: datetime) -> datetime:
        """The domain moment this clock shows at the wall-clock moment ``wall``."""
        elapsed_us = (wall - self.wall_origin) / _MICROSECOND
        return self.origin + timedelta(microseconds=math.floor(elapsed_us * self.factor))

    def wall(self, moment: datetime) -> datetime:
        """The wall-clock moment at which this clock reaches ``moment`` (never before it)."""
        ahead_us = (moment - self.origin) / _MICROSECOND
        return self.wall_origin + timedelta(microseconds=math.ceil(ahead_us / self.factor) + 1)


_MICROSECOND = timedelta(microseconds=1)


def store_path(cases: int) -> Path:
    """Where the store of ``cases`` open cases is kept."""
    return Path("var") / "bench" / f"open-cases-{cases}-v{GENERATOR_VERSION}.sqlite3"


def _open_case(i: int) -> c.OpenCase:
    return c.OpenCase(
        intake="hotline",
        kind="complaint",
        unit_code=f"U{i % UNITS:02d}",
        summary="来电反映窗口办事等候时间过长",
        phone="13800138000",
    )


def ensure_store(cases: int) -> Path:
    """The store (made on first use): the county, ``cases`` opened before the origin, views current."""
    path = store_path(cases)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in path.parent.glob(partial.name + "*"):
        leftover.unlink()
    print(f"opening {cases:,} cases into {path} (once) ...", file=sys.stderr)
    started = time.perf_counter()
    clock = FixedClock(ORIGIN)
    app = PingjingApp(env=resolve(str(partial)).env, clock=clock, observers=[])
    register_county(app)
    spacing = (ORIGIN - OPENED_FROM) / cases
    for first in range(0, cases, BATCH):
        items = [
            (_open_case(i), Context(OFFICE.actor, OFFICE.channel, at=OPENED_FROM + spacing * i))
            for i in range(first, min(first + BATCH, cases))
        ]
        for item, outcome in zip(items, app.execute_batch(items), strict=True):
            # A reference clashed with another case of the same day (100,000 in one day make a few
            # likely): alone, the command checks and draws another.
            final = app.execute_batch([item])[0] if isinstance(outcome, ConflictError) else outcome
            if isinstance(final, PingjingError):
                raise RuntimeError(f"opening a benchmark case failed: {final}")
    views = ViewStore.beside(app)
    runner = Runner(app, views, ALL)
    runner.catch_up()
    # The warnings that fell before the origin, recorded as a scheduler running then would have.
    refused = [f for f in DeadlineKeeper(app, views, runner, clock).fire_due(ORIGIN) if not f.recorded]
    if refused:
        raise RuntimeError(f"recording a benchmark warning failed: {refused[0]}")
    runner.catch_up()
    app.close()
    partial.rename(path)
    print(f"  made in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


@dataclass(frozen=True)
class SchedulerFigures:
    """What one run measured."""

    cases: int
    factor: float
    start_seconds: float
    cold_start_seconds: float
    peak_rss_mb: float
    breaches: int
    warnings: int
    p50_seconds: float | None
    p99_seconds: float | None


def child(path: Path, *, factor: float, seconds: float, cold: bool) -> dict[str, Any]:
    """In a fresh process: start the scheduler on ``path``, run it ``seconds``, stop, measure."""
    env = resolve(str(path)).env
    if cold:
        app = PingjingApp(env=env, observers=[])
        Runner(app, ViewStore.beside(app), ALL).reset()
        app.close()
    pj_logging.configure("json", "info")
    committed: dict[tuple[str, str, int], float] = {}
    warnings = 0

    def observe(executed: Executed) -> None:
        nonlocal warnings
        if not executed.saved or isinstance(executed.outcome, PingjingError):
            return
        command = executed.command
        if isinstance(command, c.RecordSlaBreach):
            committed[(command.ref, command.step, command.round)] = time.time()
        elif isinstance(command, c.RecordSlaWarning):
            warnings += 1

    clock = CompressedClock(ORIGIN, factor)
    started = time.perf_counter()
    app = PingjingApp(env=env, clock=clock, observers=[pj_logging.log_executed, observe])
    views = ViewStore.beside(app)
    keeper = DeadlineKeeper(app, views, Runner(app, views, ALL), clock)
    service = SchedulerService(keeper, FileLeadership(path.with_name(path.name + ".scheduler.lock")),
                               wall=clock.wall)
    service.start()
    if not service.ticked.wait(timeout=600):
        raise RuntimeError("the scheduler did not lead within 10 minutes")
    start_seconds = time.perf_counter() - started
    ready = clock.now()
    time.sleep(seconds)
    until = clock.now()  # the deadlines measured: those that fell from the start to now
    service.stop()  # lets the tick in progress finish
    stopped = time.time()
    figures: dict[str, Any] = {"start_seconds": start_seconds}
    if seconds > 0:
        figures |= _delays(keeper, clock, committed, (ready, until), stopped)
    figures["warnings"] = warnings
    figures["rss_mb"] = peak_rss_mb()
    app.close()
    return figures


def _delays(
    keeper: DeadlineKeeper,
    clock: CompressedClock,
    committed: dict[tuple[str, str, int], float],
    window: tuple[datetime, datetime],
    stopped: float,
) -> dict[str, Any]:
    """Deadline to committed breach, in real seconds, for the deadlines that fell in ``window``
    (domain time, from the end of the start); one not recorded by ``stopped`` counts as that late."""
    keeper.runner.catch_up()
    ready, until = window
    rows = keeper.views.query(
        "SELECT case_ref, step, round, deadline, breached_at FROM pj_ledger "
        "WHERE deadline > ? AND deadline <= ? AND (ended_at IS NULL OR ended_at > deadline)",  # not done in time
        (ts(ready), ts(until)),
    )
    delays, missing, mismatched = [], 0, 0
    for ref, step, round_, deadline_text, breached_text in rows:
        deadline = clock.wall(from_ts(deadline_text)).timestamp()
        at = committed.get((ref, step, int(round_)))
        if (at is None) != (from_opt(breached_text) is None):
            mismatched += 1  # the observer and the stored events disagree
        if at is None:
            missing += 1
            at = stopped
        delays.append(at - deadline)
    if mismatched:
        raise RuntimeError(f"{mismatched} breaches seen by the observer and the ledger differently")
    during_start = keeper.views.query(
        "SELECT COUNT(*) FROM pj_ledger WHERE deadline > ? AND deadline <= ? AND breached_at IS NOT NULL",
        (ts(clock.origin), ts(ready)),
    )[0][0]
    delays.sort()
    return {
        "breaches": len(delays),
        "missing": missing,
        "during_start": int(during_start),
        "p50": _rank(delays, 0.50),
        "p99": _rank(delays, 0.99),
        "max": delays[-1] if delays else None,
    }


def _rank(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not ordered:
        return None
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def _run_child(path: Path, *, factor: float, seconds: float, cold: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.scheduler", str(path), "--factor", str(factor), "--seconds", str(seconds)]
    if cold:
        command.append("--cold")
    done = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603 - our own module
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(cases: int, *, factor: float = FACTOR, seconds: float = RUN_SECONDS) -> SchedulerFigures:
    """Make the store (once), then a warm run and a cold start, each on its own copy in a child process."""
    path = ensure_store(cases)
    with tempfile.TemporaryDirectory(prefix="scheduler-", dir=path.parent) as tmp:
        # The citizens' keys in a copy are wrapped by the master key beside the original.
        shutil.copy2(path.with_name(DATA_KEY_FILE), Path(tmp) / DATA_KEY_FILE)
        copy = Path(tmp) / "warm.sqlite3"
        shutil.copyfile(path, copy)
        warm = _run_child(copy, factor=factor, seconds=seconds, cold=False)
        copy.unlink()
        copy = Path(tmp) / "cold.sqlite3"
        shutil.copyfile(path, copy)
        cold = _run_child(copy, factor=factor, seconds=0, cold=True)
    if warm["missing"] or warm["during_start"]:
        print(f"scheduler bench: {warm['missing']} breaches not recorded by the stop (counted as late as it), "
              f"{warm['during_start']} fell during the start (not counted)", file=sys.stderr)
    print(f"scheduler bench: {cases:,} cases, clock {factor:g}x, {warm['breaches']:,} breaches and "
          f"{warm['warnings']:,} warnings in {seconds:g} s, slowest breach {warm['max']} s", file=sys.stderr)
    return SchedulerFigures(
        cases, factor, warm["start_seconds"], cold["start_seconds"], warm["rss_mb"], warm["breaches"],
        warm["warnings"], warm["p50"], warm["p99"],
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.scheduler PATH``: one measured run on the store at PATH (it is written to)."""
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler")
    parser.add_argument("path", type=Path)
    parser.add_argument("--factor", type=float, default=FACTOR, help="domain seconds per real second")
    parser.add_argument("--seconds", type=float, default=RUN_SECONDS, help="real seconds to run after the start")
    parser.add_argument("--cold", action="store_true", help="drop the views first: the start rebuilds the ledger")
    args = parser.parse_args(argv)
    print(json.dumps(child(args.path, factor=args.factor, seconds=args.seconds, cold=args.cold)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
