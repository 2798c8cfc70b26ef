"""``make bench``: run every benchmark and print one table, also written to bench/results.md."""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

from adapters.heap import settle
from adapters.store import connect_postgres, resolve
from bench import POSTGRES_URL, http, ingest, num, rebuild
from bench import scheduler as scheduler_bench
from bench.machine import describe
from domain.application import PingjingApp

RESULTS = Path(__file__).with_name("results.md")
#: The parts ``--only`` picks from (``python -m bench --only rebuild``).
PARTS = ("ingest", "rebuild", "scheduler", "http")


def _app(database: str) -> PingjingApp:
    return PingjingApp(env=resolve(database).env, observers=[])


def _ingest_rows(label: str, database_factory, n: int, n_base: int, target: str, processes: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    rows = []
    with database_factory() as database:
        app = _app(database)
        badges = ingest.register_county(app)
        commands = [ingest.ratings(badges, n, seed=1), ingest.ratings(badges, n_base, seed=2),
                    ingest.ratings(badges, n_base, seed=3)]
        # Timed as a long-running writer runs (pingjing import, serve): with its heap settled, the
        # commands waiting to be written included (a writer would not hold them all at once).
        settle()
        grouped = ingest.grouped(app, commands[0])
        many = ingest.grouped_in_processes(app, database, n, processes) if processes > 1 else None
        single = ingest.one_command_per_transaction(app, commands[1])
        naive = ingest.one_save_per_event(app, commands[2])
        app.close()
    g, s, b = grouped.events_per_second, single.events_per_second, naive.events_per_second
    base = "one save per event"
    rows.append((f"ingest, {label}, group commit, one process (events/s)", target, g, b, base))
    if many is not None:
        rows.append((f"ingest, {label}, group commit, {processes} writer processes (events/s)", target,
                     many.events_per_second, b, base))
    rows.append((f"ingest, {label}, one command per transaction (events/s)", "-", s, b, base))
    return rows


class _SqliteFile:
    def __enter__(self) -> str:
        self.dir = tempfile.TemporaryDirectory(prefix="pingjing-bench-")
        return str(Path(self.dir.name) / "bench.sqlite3")

    def __exit__(self, *exc: object) -> None:
        self.dir.cleanup()


class _PostgresSchema:
    def __enter__(self) -> str:
        self.schema = f"pj_bench_{uuid.uuid4().hex[:10]}"
        return f"{POSTGRES_URL}?schema={self.schema}"

    def __exit__(self, *exc: object) -> None:
        with connect_postgres(resolve(POSTGRES_URL).env) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


def scheduler_rows(open_cases: int) -> list[tuple[str, str, float | None, float | None, str]]:
    """The SLA clock with ``open_cases`` open cases whose deadlines are pending."""
    s = scheduler_bench.measure(open_cases)
    n = f"{s.cases:,}"
    return [
        (f"scheduler start with {n} open cases (s)", "< 5", s.start_seconds, None, "-"),
        (f"scheduler cold start with {n} open cases, ledger rebuilt (s)", "-", s.cold_start_seconds, None, "-"),
        ("scheduler resident memory (MB)", "-", s.peak_rss_mb, None, "-"),
        ("deadline to recorded breach, p50 (s)", "-", s.p50_seconds, None, "-"),
        ("deadline to recorded breach, p99 (s)", "< 2", s.p99_seconds, None, "-"),
    ]


def http_rows(requests: int, clients: int, workers: int = 1) -> list[tuple[str, str, float | None, float | None, str]]:
    """Rating submissions over HTTP on loopback beside the same app's trivial endpoint."""
    h = http.measure(requests, clients, workers=workers)
    if h.submissions.failures or h.stored_ratings != h.submissions.requests:
        print(f"HTTP: {h.submissions.failures} submissions failed; {h.stored_ratings:,} of "
              f"{h.submissions.requests:,} reached the log", file=sys.stderr)
    s, t = h.submissions, h.trivial
    what = f"GET /livez of the same app, {clients} clients"
    if workers == 1:
        return [
            (f"rating submissions over HTTP, SQLite, one process, {clients} clients (requests/s)",
             ">= 500 (issue 5); >= 1,500 (issue 7)", s.per_second, t.per_second, what),
            ("rating submission latency, p50 (ms)", "-", s.p50_ms, t.p50_ms, what),
            ("rating submission latency, p99 (ms)", "< 100 (issue 5); < 50 (issue 7)", s.p99_ms, t.p99_ms, what),
        ]
    return [
        (f"rating submissions over HTTP, SQLite, serve --workers {workers}, {clients} clients (requests/s)",
         ">= 500 (issue 5); >= 1,500 (issue 7)", s.per_second, t.per_second, what),
        (f"rating submission latency with --workers {workers}, p50 (ms)", "-", s.p50_ms, t.p50_ms, what),
        (f"rating submission latency with --workers {workers}, p99 (ms)", "< 100 (issue 5); < 50 (issue 7)",
         s.p99_ms, t.p99_ms, what),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--ratings", type=int, default=20_000, help="ratings in the measured run")
    parser.add_argument("--baseline-ratings", type=int, default=2_000, help="ratings in each baseline run")
    parser.add_argument("--ingest-processes", type=int, default=2,
                        help="also measure group commit from N writer processes on one store (1: one process only)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--rebuild-events", type=int, default=1_000_000, help="size of the rebuild store (0: skip)")
    parser.add_argument("--open-cases", type=int, default=100_000, help="open cases for the scheduler (0: skip)")
    parser.add_argument("--http-requests", type=int, default=5_000, help="rating submissions over HTTP (0: skip)")
    parser.add_argument("--http-clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--http-workers", type=int, default=2,
                        help="also measure serve --workers N (1: only the one-process server)")
    parser.add_argument(
        "--only",
        choices=PARTS,
        help="run only this part (its rows are printed; bench/results.md keeps the last full run's table)",
    )
    args = parser.parse_args(argv)

    def runs(part: str) -> bool:
        return args.only in (None, part)

    machine = describe()
    rows: list[tuple[str, str, float | None, float | None, str]] = []
    if runs("ingest"):
        rows += _ingest_rows("SQLite file, durable", _SqliteFile, args.ratings, args.baseline_ratings,
                             ">= 5,000 (issue 2); >= 20,000 (issue 7)", args.ingest_processes)
    if runs("ingest") and not args.no_postgres:
        try:
            with connect_postgres(resolve(POSTGRES_URL).env):
                pass
        except Exception as error:  # noqa: BLE001 - report and go on without PostgreSQL
            print(f"PostgreSQL not reachable ({error}); skipping its rows", file=sys.stderr)
        else:
            rows += _ingest_rows("PostgreSQL", _PostgresSchema, args.ratings, args.baseline_ratings,
                                 ">= 10,000 (issue 7)", args.ingest_processes)

    if runs("rebuild") and args.rebuild_events:
        r = rebuild.measure(args.rebuild_events)
        n = f"{r.events:,}"
        rows.append((f"rebuild all projections from {n} events, SQLite (events/s)",
                     ">= 50,000 (issue 3); >= 100,000 (issue 7)",
                     r.rebuild_per_second, r.select_per_second, "plain SELECT of the events table"))
        rows.append((f"read and decode only, {n} events (events/s)", "-",
                     r.decode_per_second, r.select_per_second, "plain SELECT of the events table"))
        rows.append(("peak RSS of that rebuild (MB)", "< 500", r.peak_rss_mb, None, "-"))
        rows.append((f"rates query at {n} events, p95 (ms)", "< 10 (issue 3); < 5 (issue 7)",
                     r.rates_p95_ms, None, "-"))

    if runs("scheduler") and args.open_cases:
        rows += scheduler_rows(args.open_cases)

    if runs("http") and args.http_requests:
        rows += http_rows(args.http_requests, args.http_clients)
        if args.http_workers > 1:
            rows += http_rows(args.http_requests, args.http_clients, args.http_workers)

    header = "| figure | target | measured | baseline (same run) | ratio | baseline is |\n|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {name} | {target} | {num(measured)} | {num(base)} | "
        f"{f'{measured / base:.2f}x' if base else '-'} | {what} |\n"
        for name, target, measured, base, what in rows
    )
    table = f"Machine: {machine}\n\n{header}{body}"
    print(table)
    if args.only is None:
        RESULTS.write_text(f"# Benchmark results\n\n{table}")
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
