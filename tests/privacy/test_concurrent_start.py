"""Processes starting together on a new PostgreSQL schema make the key and view tables once, without errors."""

from __future__ import annotations

import threading

import pytest

from adapters.privacy.keystore import PostgresKeyTable
from adapters.store import resolve
from projections import ALL
from projections.store import ViewStore
from tests.conftest import make_app
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres
STARTING = 6


def race(start: object) -> list[BaseException]:
    """Run ``start`` in STARTING threads released at once; the errors they raised."""
    barrier = threading.Barrier(STARTING)
    errors: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            start()  # type: ignore[operator]
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(STARTING)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_key_tables_created_by_processes_starting_together_are_created_once(postgres_database: str) -> None:
    env = resolve(postgres_database).env

    def start() -> None:
        table = PostgresKeyTable(env)
        table._ensure()

    assert race(start) == []


def test_view_tables_created_by_processes_starting_together_are_created_once(
    postgres_database: str, clock: FakeClock
) -> None:
    make_app(postgres_database, clock).close()
    statements = [statement for projection in ALL for statement in projection.schema]

    def start() -> None:
        app = make_app(postgres_database, clock)
        try:
            ViewStore.beside(app).create(statements)
        finally:
            app.close()

    assert race(start) == []
