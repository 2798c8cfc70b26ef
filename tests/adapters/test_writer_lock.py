"""The writers' lock of a SQLite file: one writer at a time across processes, handed over at once."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from adapters.persistence.writelock import WriterLock
from adapters.store import resolve
from domain import commands as c
from domain.application import PingjingApp
from tests.conftest import ADMIN


def _hold(path: str, held: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    lock = WriterLock.beside(path)
    assert lock is not None
    with lock.held():
        held.set()
        release.wait(30)


def test_a_write_waits_for_another_process_holding_the_lock_and_goes_on_as_soon_as_it_is_let_go(
    tmp_path: Path,
) -> None:
    database = tmp_path / "events.sqlite3"
    app = PingjingApp(env=resolve(str(database)).env, observers=[])
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    other = context.Process(target=_hold, args=(str(database), held, release))
    other.start()
    try:
        assert held.wait(30), "the other process did not take the lock"
        done = threading.Event()
        finished_at: list[float] = []

        def write() -> None:
            app.execute(c.RegisterUnit(code="LOCKED", unit_name="测试所", kind="police_station"), ADMIN)
            finished_at.append(time.perf_counter())
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(0.5), "the write did not wait for the other process's lock"
        released_at = time.perf_counter()
        release.set()
        assert done.wait(10), "the write did not go on once the lock was let go"
        writer.join()
        assert finished_at[0] - released_at < 1.0
        assert app.get_unit("LOCKED").code == "LOCKED"
    finally:
        release.set()
        other.join(30)
        app.close()
    assert (tmp_path / "events.sqlite3-writer.lock").exists()


def test_a_thread_takes_the_lock_once_for_nested_writes_and_lets_it_go_after_the_outer_one(tmp_path: Path) -> None:
    lock = WriterLock.beside(tmp_path / "nested.sqlite3")
    assert lock is not None
    with lock.held(), lock.held():
        pass
    with lock.held():  # free again: a second thread would not wait for ever
        other_done = threading.Event()

        def other() -> None:
            with lock.held():
                other_done.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not other_done.wait(0.2), "another thread wrote while this one held the lock"
    assert other_done.wait(5)
    thread.join()


def test_one_lock_object_per_file_and_none_for_a_memory_database(tmp_path: Path) -> None:
    assert WriterLock.beside(tmp_path / "a.sqlite3") is WriterLock.beside(tmp_path / "." / "a.sqlite3")
    assert WriterLock.beside(tmp_path / "a.sqlite3") is not WriterLock.beside(tmp_path / "b.sqlite3")
    assert WriterLock.beside(":memory:") is None
    assert WriterLock.beside("file:views?mode=memory&cache=shared") is None


def test_without_a_lock_file_a_write_goes_on_under_sqlites_own_lock(tmp_path: Path) -> None:
    database = tmp_path / "events.sqlite3"
    # Something that cannot be opened as the lock file (as a read-only or full disk would refuse one).
    (tmp_path / "events.sqlite3-writer.lock").mkdir()
    app = PingjingApp(env=resolve(str(database)).env, observers=[])
    try:
        app.execute(c.RegisterUnit(code="NOLOCK", unit_name="测试所", kind="police_station"), ADMIN)
        assert app.get_unit("NOLOCK").code == "NOLOCK"
    finally:
        app.close()
