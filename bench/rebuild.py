"""Rebuild speed: all projections from a large store, beside a plain read of the events table.

The baseline is what reading the log costs at all: a plain ``SELECT`` of every row and column
of the events table, fetched into Python and nothing decoded. Reading and decoding every
event through the application's mapper, doing nothing else, is measured beside it.

The store is the demo county scaled up (more days, the same generator); it is made once
and kept under ``var/bench/`` for later runs. The rebuild runs in a child process so that
its peak memory is its own.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from adapters.demo import load_demo
from adapters.store import resolve
from domain.application import PingjingApp
from domain.rates import parse_period
from projections import ALL
from projections.parallel import rebuild_in_parallel
from projections.rates import rates
from projections.runner import Runner
from projections.store import ViewStore

#: 2: made with the hash chain and sealed contacts (a store of version 1 would be chained on first
#: open, and its contacts read in clear, not decrypted, which a real rebuild does).
GENERATOR_VERSION = 2
EVENTS_PER_DAY = 372  # what the demo county produces on an average day


def _app(path: Path) -> PingjingApp:
    return PingjingApp(env=resolve(str(path)).env, observers=[])


def store_path(events: int) -> Path:
    """Where the scaled-up demo of about ``events`` events is kept."""
    return Path("var") / "bench" / f"demo-{events}-v{GENERATOR_VERSION}.sqlite3"


def ensure_store(events: int) -> tuple[Path, int]:
    """The scaled-up demo store (made on first use) and its number of events."""
    path = store_path(events)
    if not path.exists():
        partial = path.with_suffix(".partial")
        for leftover in path.parent.glob(partial.name + "*"):
            leftover.unlink()
        app = _app(partial)
        days = math.ceil(events / EVENTS_PER_DAY)
        print(f"generating the demo county over {days} days into {path} (once) ...", file=sys.stderr)
        started = time.perf_counter()
        load_demo(app, seed=11, days=days, window=timedelta(hours=6))
        app.close()
        print(f"  generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        partial.rename(path)
    app = _app(path)
    count = int(app.recorder.max_notification_id() or 0)
    app.close()
    return path, count


@dataclass(frozen=True)
class RebuildFigures:
    """What one rebuild measured."""

    events: int
    select_per_second: float
    decode_per_second: float
    rebuild_per_second: float
    peak_rss_mb: float
    rates_p95_ms: float


#: Rows fetched per call in the plain read (the runner reads 2,000 at a time as well).
FETCH = 2000


def plain_select(path: Path) -> float:
    """Rows per second of a plain ``SELECT`` of the events table: every column of every row, fetched
    into Python, nothing decoded (the cost of reading the log at all)."""
    app = _app(path)
    table = app.recorder.events_table_name  # type: ignore[attr-defined]
    app.close()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        started = time.perf_counter()
        cursor = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - the recorder's own table name
        count = 0
        while rows := cursor.fetchmany(FETCH):
            count += len(rows)
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return count / seconds


def decode_only(path: Path) -> float:
    """Events per second read and decoded, doing nothing else."""
    app = _app(path)
    started = time.perf_counter()
    count = sum(1 for _ in app.iter_events(batch=2000))
    seconds = time.perf_counter() - started
    app.close()
    return count / seconds


def child(path: Path) -> None:
    """In a fresh process: rebuild every projection beside the events (one process each, as
    ``pingjing projections rebuild`` does), then time rates queries."""
    app = _app(path)
    applied = int(app.recorder.max_notification_id() or 0)
    started = time.perf_counter()
    done = rebuild_in_parallel(dict(resolve(str(path)).env), [p.name for p in ALL])
    seconds = time.perf_counter() - started
    rss_mb = sum(r.peak_rss_mb for r in done)
    views = ViewStore.beside(app)
    runner = Runner(app, views, ALL)
    runner.catch_up()  # nothing left to apply; loads the registry for the queries below
    rng = random.Random(5)
    units = [f"unit:{u.code}" for u in runner.context.registry.units.values()]
    badges = [f"officer:{o.badge}" for o in runner.context.registry.officers.values()]
    months = sorted({row[0] for row in views.query("SELECT DISTINCT period FROM pj_activity_counts")})
    timings = []
    for _ in range(1000):
        scope = rng.choice(["county", *units, *badges])
        period = parse_period(rng.choice(months))
        t0 = time.perf_counter()
        rates(views, scope, period)
        timings.append(time.perf_counter() - t0)
    timings.sort()
    print(json.dumps({"events": applied, "seconds": seconds, "rss_mb": rss_mb,
                      "p95_ms": timings[int(len(timings) * 0.95)] * 1000}))


def measure(events: int) -> RebuildFigures:
    """Generate (once), then time a plain read, decoding alone and a full rebuild in a child process."""
    path, count = ensure_store(events)
    select = plain_select(path)
    decode = decode_only(path)
    out = subprocess.run(  # noqa: S603 - our own interpreter running our own module
        [sys.executable, "-m", "bench.rebuild", str(path)], check=True, capture_output=True, text=True
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return RebuildFigures(count, select, decode, data["events"] / data["seconds"], data["rss_mb"], data["p95_ms"])


if __name__ == "__main__":
    child(Path(sys.argv[1]))
