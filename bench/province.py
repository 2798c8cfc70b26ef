"""The province simulation: every county's demo in one PostgreSQL database, one schema each.

``python -m bench.province [--counties 100] [--days 30] [--loaders 2] [--postgres URL]``

This is the deployment recipe at the size of a province: each county is a schema
(``?schema=COUNTY``) of one database. The program

1. loads the demo county into every schema through the application (group-committed per
   window of simulated time): the first county alone, as the baseline, then the others
   ``--loaders`` at a time, each in a process of its own;
2. rebuilds every projection of every county as ``pingjing projections rebuild`` does (one
   process per projection), one county after another, after timing the rebuild of an empty
   county (the fixed cost of starting those processes) and reading one county's log with a
   plain ``SELECT`` and with the application's decoder;
3. measures with SQL what the province occupies (``pg_database_size``, the tables of every
   schema, the rows of every events table), the WAL written and the CPU the server used;
4. prints a summary and writes ``bench/province.md``: the figures for the whole, every county,
   and an estimate, computed from these figures, of where one database stops.

Every schema it creates is dropped at the end, on an error or Ctrl-C too, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import resource
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
from psycopg import sql

from adapters.demo import DEFAULT_UNTIL, load_demo
from adapters.privacy.keystore import TABLE as KEYS_TABLE
from adapters.store import connect_postgres, resolve
from bench import POSTGRES_URL, num
from bench.machine import describe
from domain.application import PingjingApp
from projections import ALL
from projections.parallel import rebuild_in_parallel
from projections.store import ViewStore

RESULTS = Path(__file__).with_name("province.md")
DESCRIPTION = "Every county's demo in one PostgreSQL database, one schema each: ingest, rebuild, size, estimate."
#: Every schema of a run is ``pj_province_<run>_...``; nothing else is created or dropped.
PREFIX = "pj_province_"
#: The registry (units, officers, their QR identities): loaded once per county, not every day.
REGISTRY_TOPICS = "domain.registry:%"
DAY_SECONDS = 86_400
YEAR_DAYS = 365
GB = 1024**3
MB = 1024**2


# -- what is measured -------------------------------------------------------------------------


@dataclass
class County:
    """One county's schema and what was measured on it."""

    number: int
    schema: str
    seed: int
    alone: bool = False  # loaded alone, before the others (the baseline)
    events: int = 0  # the store's head after loading (its max notification id)
    rows: int = 0  # rows in its events table (SQL count)
    registry_events: int = 0  # of which the registry, loaded once
    ingest_seconds: float = 0.0  # load_demo through the application
    rebuild_seconds: float = 0.0  # every projection, one process each, start to finish
    rebuilt_to: int = 0  # the lowest projection position after the rebuild
    log_bytes: int = 0  # events, chain and key tables, with indexes and TOAST
    view_bytes: int = 0  # the projections' tables and tracking

    @property
    def name(self) -> str:
        """``c001`` ..."""
        return f"c{self.number:03d}"

    @property
    def ingest_rate(self) -> float:
        """Events per second loaded."""
        return self.events / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def rebuild_rate(self) -> float:
        """Events per second rebuilt."""
        return self.events / self.rebuild_seconds if self.rebuild_seconds else 0.0


@dataclass(frozen=True)
class Cpu:
    """CPU used over a phase, in core-seconds (None: not measurable from here)."""

    seconds: float  # wall clock
    machine: float | None  # every core of this machine, busy
    children: float  # this program's child processes (loaders or rebuild processes)
    postgres: float | None  # the PostgreSQL server, when it runs on this machine
    own: float  # this program's own process

    @property
    def others(self) -> float | None:
        """What the rest of the machine used meanwhile (other programs sharing it)."""
        if self.machine is None or self.postgres is None:
            return None
        return max(0.0, self.machine - self.postgres - self.children - self.own)


@dataclass(frozen=True)
class Assumptions:
    """The inputs of the estimate that are not measured."""

    burst_per_second: float = 3_000.0  # DESIGN §10: "bursts of thousands a second"
    rebuild_window_hours: float = 8.0  # a working night
    disk_gb: float = 1_000.0  # the database server's disk for the province


@dataclass
class Province:
    """A run: its parameters and everything it measured."""

    url: str
    run: str
    days: int
    loaders: int
    window: timedelta
    assumptions: Assumptions
    counties: list[County]
    server: dict[str, str] = field(default_factory=dict)
    events_table: str = ""
    ingest: Cpu | None = None  # the concurrent phase (every county but the first)
    ingest_wal_bytes: int | None = None
    rebuild: Cpu | None = None  # every county, one after another
    empty_rebuild_seconds: float = 0.0  # median of three rebuilds of an empty county
    select_per_second: float = 0.0  # one county's events table, plain SELECT
    decode_per_second: float = 0.0  # one county's log read and decoded by the application
    database_bytes: int = 0
    busiest_hour: tuple[str, int] = ("", 0)  # the province's busiest hour of simulated time, registry left out
    run_seconds: float = 0.0
    dropped: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # schemas that could not be dropped

    @property
    def events(self) -> int:
        """Every event of the province."""
        return sum(c.events for c in self.counties)

    @property
    def concurrent(self) -> list[County]:
        """The counties loaded ``loaders`` at a time."""
        return [c for c in self.counties if not c.alone]

    @property
    def ingest_rate(self) -> float:
        """The whole: events of the concurrent phase over its wall-clock time."""
        assert self.ingest is not None
        return sum(c.events for c in self.concurrent) / self.ingest.seconds

    @property
    def rebuild_rate(self) -> float:
        """The whole: every event over the wall-clock time of the rebuild phase."""
        assert self.rebuild is not None
        return self.events / self.rebuild.seconds

    @property
    def alone(self) -> County:
        """The baseline county."""
        return self.counties[0]

    @property
    def per_county_day(self) -> float:
        """Events a county adds on an average day (the registry, loaded once, left out)."""
        daily = sum(c.events - c.registry_events for c in self.counties)
        return daily / (len(self.counties) * self.days)

    @property
    def peak_per_second(self) -> float:
        """Events per second in the province's busiest hour (all counties tell the same days)."""
        return self.busiest_hour[1] / 3600

    @property
    def bytes_per_event(self) -> float:
        """What an event costs on disk, its share of the views included."""
        return sum(c.log_bytes + c.view_bytes for c in self.counties) / self.events

    @property
    def log_bytes_per_event(self) -> float:
        """What an event costs on disk in the log alone (events, chain, keys)."""
        return sum(c.log_bytes for c in self.counties) / self.events

    @property
    def rebuild_net_rate(self) -> float:
        """Events per second rebuilt once the processes have started (the fixed cost taken out)."""
        assert self.rebuild is not None
        net = sum(c.rebuild_seconds for c in self.counties) - len(self.counties) * self.empty_rebuild_seconds
        return self.events / net if net > 0 else self.rebuild_rate


# -- PostgreSQL -------------------------------------------------------------------------------


def with_schema(url: str, schema: str) -> str:
    """The URL with ``?schema=`` set (the deployment recipe's one schema per county)."""
    parts = urlparse(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"] + [("schema", schema)]
    return urlunparse(parts._replace(query=urlencode(query)))


def printable(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


@contextmanager
def connection(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit connection to the database of ``url``."""
    with connect_postgres(resolve(url).env) as conn:
        yield conn


def scalar(conn: psycopg.Connection[Any], query: Any, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row."""
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def drop_schemas(url: str, schemas: Sequence[str]) -> tuple[list[str], list[str]]:
    """Drop the schemas one by one (one transaction each keeps the locks few); (dropped, left)."""
    dropped, left = [], []
    try:
        with connection(url) as conn:
            present = {row[0] for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(schemas),))}
            for schema in schemas:
                if schema in present:
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
                    dropped.append(schema)
    except psycopg.Error as error:
        print(f"could not drop the province's schemas: {error}", file=sys.stderr)
        left = [s for s in schemas if s not in dropped]
    return dropped, left


def postgres_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds the PostgreSQL server has used so far, when it runs on this machine: its
    postmaster with every child it has reaped (ended connections), and every live child."""
    try:
        backend = int(scalar(conn, "SELECT pg_backend_pid()"))
        mine = _proc_stat(backend)
        if mine is None or mine[0] != "postgres":
            return None  # another machine, or another PID namespace
        master = int(mine[2][1])
        fields = _proc_stat(master)
        if fields is None:
            return None
        ticks = 0
        rest = fields[2]
        ticks += int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                child = _proc_stat(int(entry.name))
                if child is not None and child[2][1] == str(master):
                    ticks += int(child[2][11]) + int(child[2][12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _proc_stat(pid: int) -> tuple[str, int, list[str]] | None:
    """(command, pid, the fields after the command) of ``/proc/PID/stat``, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    return comm, pid, text[text.rindex(")") + 2 :].split()


def machine_cpu() -> float | None:
    """Core-seconds every core of this machine has been busy since it started."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """Core-seconds used by this program's ended child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """Core-seconds used by this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measured(url: str, out: Callable[[Cpu], None]) -> Iterator[None]:
    """Time a phase and the CPU it used; ``out`` gets the figures. (No connection stays open
    meanwhile: the phase forks processes.)"""
    with connection(url) as conn:
        pg0 = postgres_cpu(conn)
    m0, c0, o0, t0 = machine_cpu(), children_cpu(), own_cpu(), time.perf_counter()
    yield
    seconds = time.perf_counter() - t0
    m1, c1, o1 = machine_cpu(), children_cpu(), own_cpu()
    with connection(url) as conn:
        pg1 = postgres_cpu(conn)
    out(Cpu(
        seconds,
        None if m0 is None or m1 is None else m1 - m0,
        c1 - c0,
        None if pg0 is None or pg1 is None else pg1 - pg0,
        o1 - o0,
    ))


# -- ingest -----------------------------------------------------------------------------------


def load_county(url: str, schema: str, seed: int, days: int, window_seconds: float) -> tuple[int, float, str]:
    """In a loader process: the demo county into an empty schema. (head, seconds, events table)."""
    app = PingjingApp(env=resolve(with_schema(url, schema)).env, observers=[])
    try:
        started = time.perf_counter()
        load_demo(app, seed=seed, days=days, window=timedelta(seconds=window_seconds))
        seconds = time.perf_counter() - started
        head = int(app.recorder.max_notification_id() or 0)
        table = str(getattr(app.recorder, "events_table_name", "pingjing_events"))
    finally:
        app.close()
    return head, seconds, table


def ingest(p: Province, say: Callable[[str], None]) -> None:
    """The first county alone, then the others ``loaders`` at a time."""
    window = p.window.total_seconds()
    first, rest = p.counties[0], p.counties[1:]
    first.alone = True
    with ProcessPoolExecutor(max_workers=1) as pool:
        first.events, first.ingest_seconds, p.events_table = pool.submit(
            load_county, p.url, first.schema, first.seed, p.days, window).result()
    say(f"ingest: {first.name} alone: {first.events:,} events in {first.ingest_seconds:.1f} s "
        f"({first.ingest_rate:,.0f} events/s)")

    def keep(cpu: Cpu) -> None:
        p.ingest = cpu

    with connection(p.url) as conn:
        wal0 = scalar(conn, "SELECT pg_current_wal_lsn()::text")
    with measured(p.url, keep):
        pool = ProcessPoolExecutor(max_workers=p.loaders)
        try:
            futures = {pool.submit(load_county, p.url, c.schema, c.seed, p.days, window): c for c in rest}
            for done, future in enumerate(as_completed(futures), 1):
                county = futures[future]
                county.events, county.ingest_seconds, _ = future.result()
                if done % 10 == 0 or done == len(rest):
                    say(f"ingest: {done}/{len(rest)} counties {p.loaders} at a time")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    with connection(p.url) as conn:
        p.ingest_wal_bytes = int(scalar(conn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (wal0,)))


# -- rebuild ----------------------------------------------------------------------------------


def rebuild_county(url: str, schema: str) -> float:
    """Every projection of one county, one process each (``pingjing projections rebuild``); seconds."""
    env = resolve(with_schema(url, schema)).env
    started = time.perf_counter()
    rebuild_in_parallel(env, [p.name for p in ALL])
    return time.perf_counter() - started


def positions(url: str, schema: str) -> tuple[int, int]:
    """(the store's head, the lowest projection position) of one county."""
    app = PingjingApp(env=resolve(with_schema(url, schema)).env, observers=[])
    try:
        views = ViewStore.beside(app)
        return int(app.recorder.max_notification_id() or 0), min(
            views.position(f"pingjing.{p.name}") for p in ALL)
    finally:
        app.close()


def baselines(p: Province, empty_schema: str) -> None:
    """The rebuild of an empty county (fixed cost), and one county's log read without folding it."""
    p.empty_rebuild_seconds = statistics.median(rebuild_county(p.url, empty_schema) for _ in range(3))
    table = sql.SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
                    "ORDER BY notification_id").format(sql.Identifier(p.alone.schema),
                                                       sql.Identifier(p.events_table))
    timings = []
    with connection(p.url) as conn:
        for _ in range(5):
            started = time.perf_counter()
            n = len(conn.execute(table).fetchall())
            timings.append(n / (time.perf_counter() - started))
    p.select_per_second = statistics.median(timings)
    app = PingjingApp(env=resolve(with_schema(p.url, p.alone.schema)).env, observers=[])
    try:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            n = sum(1 for _ in app.iter_events(batch=2000))
            timings.append(n / (time.perf_counter() - started))
    finally:
        app.close()
    p.decode_per_second = statistics.median(timings)


def rebuild(p: Province, say: Callable[[str], None]) -> None:
    """Every county's projections, one county after another."""

    def keep(cpu: Cpu) -> None:
        p.rebuild = cpu

    with measured(p.url, keep):
        for done, county in enumerate(p.counties, 1):
            county.rebuild_seconds = rebuild_county(p.url, county.schema)
            if done % 10 == 0 or done == len(p.counties):
                say(f"rebuild: {done}/{len(p.counties)} counties")
    for county in p.counties:
        head, county.rebuilt_to = positions(p.url, county.schema)
        if head != county.events:
            raise RuntimeError(f"{county.name}: the store's head is {head}, the loader said {county.events}")


# -- SQL measures -----------------------------------------------------------------------------


def sizes(p: Province) -> None:
    """Rows of every events table, the registry's share, bytes of every schema, the database's size."""
    log_tables = {p.events_table, f"{p.events_table}_chain", KEYS_TABLE}
    by_schema = {c.schema: c for c in p.counties}
    with connection(p.url) as conn:
        for county in p.counties:
            count = sql.SQL("SELECT count(*), count(*) FILTER (WHERE topic LIKE %s) FROM {}.{}").format(
                sql.Identifier(county.schema), sql.Identifier(p.events_table))
            row = conn.execute(count, (REGISTRY_TOPICS,)).fetchone()
            county.rows, county.registry_events = (int(row[0]), int(row[1])) if row else (0, 0)
        for schema, table, size in conn.execute(
            "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = ANY(%s)",
            (list(by_schema),),
        ):
            county = by_schema[schema]
            if table in log_tables:
                county.log_bytes += int(size)
            else:
                county.view_bytes += int(size)
        p.database_bytes = int(scalar(conn, "SELECT pg_database_size(current_database())"))
        hours: Counter[str] = Counter()
        for county in p.counties:
            hourly = sql.SQL(
                "SELECT to_char(date_trunc('hour', (convert_from(state, 'UTF8')::json #>> '{{timestamp,_data_}}')"
                "::timestamptz AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM-DD HH24:00'), count(*) "
                "FROM {}.{} WHERE topic NOT LIKE %s GROUP BY 1").format(
                sql.Identifier(county.schema), sql.Identifier(p.events_table))
            hours.update({hour: int(n) for hour, n in conn.execute(hourly, (REGISTRY_TOPICS,))})
        p.busiest_hour = hours.most_common(1)[0] if hours else ("", 0)


def server_settings(url: str) -> dict[str, str]:
    """The server's version and the settings that bear on ingest."""
    with connection(url) as conn:
        return {name: str(scalar(conn, sql.SQL("SHOW {}").format(sql.Identifier(name))))
                for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers", "max_wal_size")}


# -- the run ----------------------------------------------------------------------------------


def simulate(
    url: str,
    *,
    counties: int,
    days: int,
    loaders: int,
    window: timedelta,
    assumptions: Assumptions,
    keep: bool = False,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Province:
    """Load, rebuild and measure the province; drop its schemas afterwards unless ``keep``."""
    started = time.perf_counter()
    run = uuid.uuid4().hex[:6]
    p = Province(
        url=url, run=run, days=days, loaders=loaders, window=window, assumptions=assumptions,
        counties=[County(n, f"{PREFIX}{run}_c{n:03d}", seed=1000 + n) for n in range(1, counties + 1)],
    )
    empty = f"{PREFIX}{run}_empty"
    schemas = [c.schema for c in p.counties] + [empty]
    p.server = server_settings(url)
    say(f"province {run}: {counties} counties x {days} days into {printable(url)} "
        f"(schemas {p.counties[0].schema} ... {p.counties[-1].schema})")
    try:
        ingest(p, say)
        baselines(p, empty)
        rebuild(p, say)
        sizes(p)
    finally:
        if keep:
            say(f"kept the schemas {PREFIX}{run}_*")
        else:
            p.dropped, p.left = drop_schemas(url, schemas)
            say(f"dropped {len(p.dropped)} schemas" + (f"; left {', '.join(p.left)}" if p.left else ""))
    p.run_seconds = time.perf_counter() - started
    return p


# -- the report -------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """Seconds, minutes, hours or days, whichever reads best."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY_SECONDS:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY_SECONDS:.1f} days"


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(min, median, max)."""
    return min(values), statistics.median(values), max(values)


def per_thousand(cpu: float | None, events: int) -> float | None:
    """Core-milliseconds per 1,000 events... which is core-seconds per million."""
    return None if cpu is None or not events else cpu / events * 1_000_000


def share(core_seconds: float | None, phase: Cpu) -> float | None:
    """Core-seconds over a phase as a percentage of every core of the machine."""
    return None if core_seconds is None else core_seconds / (phase.seconds * (os.cpu_count() or 1)) * 100


def whole_rows(p: Province) -> list[tuple[str, float | None, float | None, str]]:
    """(figure, measured, baseline, what the baseline is)."""
    assert p.ingest is not None
    assert p.rebuild is not None
    n, rest = len(p.counties), p.concurrent
    concurrent_events = sum(c.events for c in rest)
    alone = f"{p.alone.name} loaded alone"
    cores = os.cpu_count() or 1
    ingest_cpu, rebuild_cpu = p.ingest, p.rebuild
    return [
        (f"ingest, the whole: {len(rest)} counties {p.loaders} at a time (events/s)", p.ingest_rate,
         p.alone.ingest_rate, alone),
        ("ingest, one county among them, median (events/s)", statistics.median(c.ingest_rate for c in rest),
         p.alone.ingest_rate, alone),
        (f"rebuild, the whole: {n} counties one after another (events/s)", p.rebuild_rate, p.decode_per_second,
         f"{p.alone.name}'s log read and decoded only"),
        ("rebuild, one county, median (events/s)", statistics.median(c.rebuild_rate for c in p.counties),
         p.decode_per_second, f"{p.alone.name}'s log read and decoded only"),
        ("rebuild of an empty county: starting the processes (s)", p.empty_rebuild_seconds, None, "-"),
        ("rebuild net of that start (events/s)", p.rebuild_net_rate, p.decode_per_second,
         f"{p.alone.name}'s log read and decoded only"),
        (f"plain SELECT of {p.alone.name}'s events table (rows/s)", p.select_per_second, None, "-"),
        ("events in the province", p.events, sum(c.rows for c in p.counties), "rows counted in the events tables"),
        ("events per county per day, registry left out", p.per_county_day, None, "-"),
        (f"the province's busiest hour of simulated time, {p.busiest_hour[0]} (events/s)", p.peak_per_second,
         len(p.counties) * p.per_county_day / DAY_SECONDS, "the average over the day"),
        ("database size, pg_database_size (MB)", p.database_bytes / MB, None, "-"),
        ("the province's schemas, sum of pg_total_relation_size (MB)",
         sum(c.log_bytes + c.view_bytes for c in p.counties) / MB, None, "-"),
        ("of which the log: events, chain, keys (MB)", sum(c.log_bytes for c in p.counties) / MB, None, "-"),
        ("bytes per event, views included", p.bytes_per_event, p.log_bytes_per_event, "bytes per event, log only"),
        ("WAL written per event during the concurrent ingest (bytes)",
         None if p.ingest_wal_bytes is None else p.ingest_wal_bytes / concurrent_events, None, "-"),
        ("PostgreSQL CPU per 1,000 events ingested (core-ms)", per_thousand(ingest_cpu.postgres, concurrent_events),
         per_thousand(ingest_cpu.children, concurrent_events), "the loaders' CPU per 1,000 events"),
        (f"machine busy during the concurrent ingest (% of {cores} cores)", share(ingest_cpu.machine, ingest_cpu),
         share(ingest_cpu.others, ingest_cpu), "of which other programs"),
        ("PostgreSQL CPU per 1,000 events rebuilt (core-ms)", per_thousand(rebuild_cpu.postgres, p.events),
         per_thousand(rebuild_cpu.children, p.events), "the rebuild processes' CPU per 1,000 events"),
        (f"machine busy during the rebuild (% of {cores} cores)", share(rebuild_cpu.machine, rebuild_cpu),
         share(rebuild_cpu.others, rebuild_cpu), "of which other programs"),
        ("ingest phase, concurrent part (s)", ingest_cpu.seconds, None, "-"),
        ("rebuild phase (s)", rebuild_cpu.seconds, None, "-"),
    ]


def county_rows(p: Province) -> list[tuple[str, float, float, float]]:
    """(figure, min, median, max) over the counties."""
    rest = p.concurrent
    return [
        (f"events per county ({p.days} days)", *spread([c.events for c in p.counties])),
        (f"ingest, {p.loaders} at a time (events/s)", *spread([c.ingest_rate for c in rest])),
        (f"ingest, {p.loaders} at a time (s)", *spread([c.ingest_seconds for c in rest])),
        ("rebuild (events/s)", *spread([c.rebuild_rate for c in p.counties])),
        ("rebuild (s)", *spread([c.rebuild_seconds for c in p.counties])),
        ("size of the schema (MB)", *spread([(c.log_bytes + c.view_bytes) / MB for c in p.counties])),
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def whole_table(p: Province) -> str:
    """The figures for the whole, beside their baselines."""
    return table(
        ("figure", "measured", "baseline (same run)", "ratio", "baseline is"),
        [(name, num(m), num(b), f"{m / b:.2f}x" if m is not None and b and not what.startswith("of which") else "-",
          what)
         for name, m, b, what in whole_rows(p)],
    )


def county_table(p: Province) -> str:
    """Min, median and max over the counties."""
    return table(("per county", "min", "median", "max"),
                 [(name, num(lo), num(mid), num(hi)) for name, lo, mid, hi in county_rows(p)])


def every_county(p: Province) -> str:
    """One row per county."""
    return table(
        ("county", "loaded", "events", "registry events", "ingest (s)", "ingest (events/s)", "rebuild (s)",
         "rebuild (events/s)", "rebuilt to", "log (MB)", "views (MB)"),
        [(c.name, "alone" if c.alone else f"{p.loaders} at a time", f"{c.events:,}", f"{c.registry_events:,}",
          f"{c.ingest_seconds:.2f}", f"{c.ingest_rate:,.0f}", f"{c.rebuild_seconds:.2f}", f"{c.rebuild_rate:,.0f}",
          f"{c.rebuilt_to:,}", f"{c.log_bytes / MB:.2f}", f"{c.view_bytes / MB:.2f}") for c in p.counties],
    )


def first_limit(limits: list[tuple[str, float]]) -> str:
    """Which limit comes first and when (years of data; 0: already), then the others."""
    ordered = sorted(limits, key=lambda item: item[1])
    (first, when), later = ordered[0], [(n, y) for n, y in ordered[1:] if 0 < y < math.inf]
    if math.isinf(when):
        return "nothing, within these assumptions."
    said = f"{first}, already at this size." if when == 0 else f"{first}, after about {when:,.1f} years of data."
    return said + (" Then " + "; ".join(f"{n} after {y:,.1f} years" for n, y in later) + "." if later else "")


def estimate(p: Province) -> str:  # noqa: PLR0915 - one page of prose, each figure computed where it is said
    """Where one database stops, and what comes next: every figure computed from this run."""
    a = p.assumptions
    assert p.ingest is not None
    assert p.rebuild is not None
    n = len(p.counties)
    per_day = p.per_county_day
    per_year = n * per_day * YEAR_DAYS
    average = n * per_day / DAY_SECONDS
    peak = p.peak_per_second
    rate = p.ingest_rate
    headroom_burst = rate / a.burst_per_second
    bytes_year = per_year * p.bytes_per_event
    disk_years = a.disk_gb * GB / bytes_year
    window = a.rebuild_window_hours * 3600
    fixed = n * p.empty_rebuild_seconds
    net = p.rebuild_net_rate

    def rebuild_time(years: float) -> float:
        return fixed + per_year * years / net

    rebuild_years = (window - fixed) * net / per_year if window > fixed else 0.0
    servers_burst = max(1, math.ceil(a.burst_per_second / rate))
    concurrent_events = sum(c.events for c in p.concurrent)
    pg_ms = per_thousand(p.ingest.postgres, concurrent_events)
    loader_ms = per_thousand(p.ingest.children, concurrent_events)
    wal = None if p.ingest_wal_bytes is None else p.ingest_wal_bytes / concurrent_events
    cores = os.cpu_count() or 1
    registry = statistics.median(c.registry_events for c in p.counties)

    out = ["## Where one database stops\n"]
    out.append(
        "Computed by `bench/province.py` from the figures above; only these inputs are assumed "
        "(`--burst`, `--rebuild-window-hours`, `--disk-gb`):\n\n"
        f"- a burst of **{a.burst_per_second:,.0f} events/s** for the whole province (DESIGN §10: "
        "\"bursts of thousands a second\");\n"
        f"- a rebuild window of **{a.rebuild_window_hours:g} h** (a working night);\n"
        f"- **{a.disk_gb:,.0f} GB** of disk for the database.\n"
    )
    out.append(
        f"**The province.** A demo county adds {per_day:,.0f} events a day (its registry of {registry:,.0f} "
        f"events is loaded once): {n} counties make {per_year / 1e6:,.1f} million events a year, "
        f"{num(average)} events/s on average; in the busiest hour of the simulated {p.days} days "
        f"({p.busiest_hour[0]}, every county together) {num(peak)} events/s.\n"
    )
    ingest_line = (
        f"**Ingest.** {len(p.concurrent)} counties loaded {p.loaders} at a time went in at {rate:,.0f} events/s "
        f"through the application (one county alone: {p.alone.ingest_rate:,.0f}): {rate / average:,.0f} times "
        f"the province's average, {rate / peak if peak else math.inf:,.0f} times its busiest hour, "
        f"{headroom_burst:.2f} times the assumed burst. "
    )
    if headroom_burst < 1:
        ingest_line += (
            f"As measured here one database is short of the burst: above {rate:,.0f} events/s requests queue "
            "in the group committer and wait; it carries a burst of that size spread over about "
            f"{n * headroom_burst:,.0f} counties (if a burst grows with the number of counties). "
        )
    else:
        ingest_line += (
            "If a burst grows with the number of counties, one database carries it up to about "
            f"{n * headroom_burst:,.0f} counties. "
        )
    db_ceiling = None
    if pg_ms is not None and loader_ms is not None:
        busy, others = share(p.ingest.machine, p.ingest), share(p.ingest.others, p.ingest)
        db_ceiling = cores * 1e6 / pg_ms
        ingest_line += (
            f"Per 1,000 events PostgreSQL used {pg_ms:,.0f} core-ms of CPU and the application (the loaders) "
            f"{loader_ms:,.0f}, on the {cores} cores they shared"
            + (f" ({busy:.0f} % busy, {others:.0f} % of the machine taken by other programs)"
               if busy is not None and others is not None else "")
            + f". CPU-bound, both on these {cores} cores would ingest about "
            f"{cores * 1e6 / (pg_ms + loader_ms):,.0f} events/s; a server like this one given to the database "
            f"alone about {db_ceiling:,.0f} (CPU only, before locks, disks and fsync say otherwise). The assumed "
            f"burst takes {a.burst_per_second * pg_ms / 1e6:,.1f} cores of database and "
            f"{a.burst_per_second * loader_ms / 1e6:,.1f} of application, which in a deployment runs on machines "
            "of its own (`serve --workers`). "
        )
    out.append(ingest_line.rstrip() + "\n")
    out.append(
        f"**Storage.** An event takes {p.bytes_per_event:,.0f} bytes on disk with its share of the views "
        f"({p.log_bytes_per_event:,.0f} for the log alone: events, chain, keys): "
        f"{bytes_year / GB:,.1f} GB a year for the province, so the assumed {a.disk_gb:,.0f} GB hold "
        f"{disk_years:,.0f} years"
        + (f". The WAL written was {wal:,.0f} bytes per event ingested" if wal is not None else "")
        + ".\n"
    )
    rebuild_line = (
        f"**Rebuild.** Every county's views rebuilt one county after another went at {p.rebuild_rate:,.0f} "
        f"events/s: {duration(p.rebuild.seconds)} for these {p.events:,} events, of which {duration(fixed)} is "
        f"starting the processes ({p.empty_rebuild_seconds:.2f} s a county, measured on an empty one); net of "
        f"that, {net:,.0f} events/s. The province's whole history then takes {duration(rebuild_time(1))} after "
        f"one year, {duration(rebuild_time(5))} after five, {duration(rebuild_time(10))} after ten; "
    )
    if rebuild_years > 0:
        rebuild_line += (
            f"it outgrows the {a.rebuild_window_hours:g} h window after {rebuild_years:,.1f} years of data. ")
    else:
        rebuild_line += f"starting the processes alone fills the {a.rebuild_window_hours:g} h window. "
    rebuild_line += (
        f"One county alone is small: {duration(p.empty_rebuild_seconds + per_day * YEAR_DAYS * 10 / net)} "
        "for ten years of it.\n"
    )
    out.append(rebuild_line)

    limits = [("ingest at the assumed burst", 0.0 if headroom_burst < 1 else math.inf),
              ("the whole rebuild in one window", rebuild_years),
              ("the disk", disk_years)]
    verdict = "**First to stop, as measured on this machine:** " + first_limit(limits)
    if db_ceiling is not None and headroom_burst < 1:
        verdict += (
            " **With the database on a server of its own** (like this one, counting its CPU alone): " + first_limit(
                [("ingest at the assumed burst", 0.0 if db_ceiling < a.burst_per_second else math.inf), *limits[1:]])
        )
    out.append(verdict + "\n")

    out.append(
        "### What comes next\n\n"
        "- **Partitioning by county.** Each county is a schema with its own log, chain, keys and views; no "
        "command or transaction spans two counties, and the lock an insert takes is on its own county's "
        "events table. A group of schemas moves to another server (`pg_dump -n SCHEMA`, restore, give that "
        "county's processes the new URL) with nothing else to change. At the measured rate the assumed "
        f"burst needs {servers_burst} server{'s' if servers_burst > 1 else ''} like this one; every server "
        "added brings its own disk, and the servers rebuild their groups side by side.\n"
        "- **Read replicas** for the console, reports and rates, which only read views: the primary keeps "
        "the ingest and the projection processes"
        + (f"; at the assumed burst a replica receives about {wal * a.burst_per_second / MB:,.1f} MB/s of WAL"
           if wal is not None else "")
        + ". Not built yet: the application reads its views from the database it writes.\n"
        "- **Per-county projection processes.** `pingjing projections run` follows one schema; a province runs "
        "one per county (or per group of counties) on as many machines as it needs, and rebuilds of "
        "different counties run side by side: each county's rebuild uses two processes, so four counties at "
        f"a time on 8 cores would bring a year of the province from {duration(rebuild_time(1))} to about "
        f"{duration(rebuild_time(1) / 4)}.\n"
    )
    out.append(
        f"All of it measured on one machine of {cores} cores shared by the loaders, the rebuild processes "
        "and the PostgreSQL server: the rates are lower bounds for a dedicated database server.\n"
    )
    return "\n".join(out)


def report(p: Province, command: str) -> str:
    """The Markdown file."""
    s = p.server
    params = table(("parameter", "value"), [
        ("command", f"`{command}`"),
        ("counties", f"{len(p.counties)}, one schema each: `{p.counties[0].schema}` ... `{p.counties[-1].schema}`"
                     + (" (dropped afterwards)" if p.dropped else "")),
        ("demo", f"{p.days} days up to {DEFAULT_UNTIL}, seeds {p.counties[0].seed} ... {p.counties[-1].seed}"),
        ("group commit", f"one transaction per {duration(p.window.total_seconds())} of simulated time per county"),
        ("loaders", f"{p.loaders} processes (the first county alone before them)"),
        ("rebuild", f"one process per projection ({', '.join(x.name for x in ALL)}), counties one after another"),
        ("PostgreSQL", f"{printable(p.url)}: {s.get('server_version')}, synchronous_commit "
                       f"{s.get('synchronous_commit')}, fsync {s.get('fsync')}, shared_buffers "
                       f"{s.get('shared_buffers')}, max_wal_size {s.get('max_wal_size')}"),
        ("run time", duration(p.run_seconds)),
    ])
    return (
        "# Province simulation\n\n"
        f"Machine: {describe()}\n\n"
        f"Run {p.run} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, written by `python -m bench.province`.\n\n"
        f"{params}\n## The whole\n\n{whole_table(p)}\n## Per county\n\n{county_table(p)}\n"
        f"{estimate(p)}\n## Every county\n\n{every_county(p)}"
    )


def run(argv: list[str] | None = None) -> Province | None:
    """Parse the arguments, run the simulation, print the summary and write the report (None: no server)."""
    parser = argparse.ArgumentParser(prog="python -m bench.province", description=DESCRIPTION)
    parser.add_argument("--counties", type=int, default=100)
    parser.add_argument("--days", type=int, default=30, help="days of demo activity per county")
    parser.add_argument("--loaders", type=int, default=2, help="counties loaded at once, one process each")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="the database (default: $PINGJING_BENCH_POSTGRES)")
    parser.add_argument("--window-minutes", type=float, default=360,
                        help="simulated time per transaction of a county (group commit)")
    parser.add_argument("--burst", type=float, default=Assumptions.burst_per_second,
                        help="assumed burst for the province (events/s)")
    parser.add_argument("--rebuild-window-hours", type=float, default=Assumptions.rebuild_window_hours)
    parser.add_argument("--disk-gb", type=float, default=Assumptions.disk_gb)
    parser.add_argument("--output", type=Path, default=RESULTS, help="the report (default: bench/province.md)")
    parser.add_argument("--keep", action="store_true", help="keep the schemas afterwards")
    args = parser.parse_args(argv)
    if args.counties < 2 or args.days < 1 or args.loaders < 1:
        parser.error("--counties must be at least 2 (the first is loaded alone), --days and --loaders at least 1")
    try:
        with connection(args.postgres):
            pass
    except (psycopg.Error, ValueError) as error:
        print(f"PostgreSQL at {printable(args.postgres)} not reachable: {error}", file=sys.stderr)
        return None
    p = simulate(
        args.postgres, counties=args.counties, days=args.days, loaders=args.loaders,
        window=timedelta(minutes=args.window_minutes),
        assumptions=Assumptions(args.burst, args.rebuild_window_hours, args.disk_gb), keep=args.keep,
    )
    command = " ".join(["python -m bench.province", *(
        printable(a) for a in (argv if argv is not None else sys.argv[1:]))])
    print(f"Machine: {describe()}\n")
    print(whole_table(p))
    print(county_table(p))
    args.output.write_text(report(p, command))
    print(f"written to {args.output}")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.province``."""
    try:
        return 0 if run(argv) is not None else 2
    except KeyboardInterrupt:
        print("interrupted (the province's schemas are dropped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
