"""Requests first: the background loops of a serving process step aside while requests are in flight."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from adapters.foreground import NO_FOREGROUND, Foreground
from adapters.http import create_app
from adapters.notify.outbox import Outbox
from projections.store import ViewStore
from tests.fakes import FakeClock
from tests.http.conftest import make_world


def test_an_idle_process_lets_background_loops_run_on_at_once() -> None:
    foreground = Foreground(pause=5)
    started = time.perf_counter()
    for _ in range(100):
        foreground.step_aside()
    assert time.perf_counter() - started < 1
    assert foreground.waits == 0


def test_a_loop_waits_while_a_request_is_in_flight_and_goes_on_when_it_is_answered() -> None:
    foreground = Foreground(pause=5)
    foreground.started()
    stepped = threading.Event()

    def loop() -> None:
        foreground.step_aside(17, 42)  # a progress callback's arguments are taken and ignored
        stepped.set()

    thread = threading.Thread(target=loop)
    thread.start()
    assert not stepped.wait(0.2), "the loop went on while a request was in flight"
    foreground.finished()
    assert stepped.wait(2), "the loop did not go on once the request was answered"
    thread.join()
    assert foreground.waits == 1
    assert foreground.in_flight == 0


def test_under_sustained_load_a_loop_waits_at_most_its_pause_per_step() -> None:
    foreground = Foreground(pause=0.05)
    foreground.started()  # never answered: requests are in flight all along
    started = time.perf_counter()
    for _ in range(4):
        foreground.step_aside()
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 2
    assert foreground.waits == 4


def test_a_process_without_http_never_waits() -> None:
    NO_FOREGROUND.started()
    try:
        started = time.perf_counter()
        NO_FOREGROUND.step_aside()
        assert time.perf_counter() - started < 0.05
    finally:
        NO_FOREGROUND.finished()


def test_the_app_counts_each_request_while_it_is_answered(tmp_path: Path, clock: FakeClock) -> None:
    world = make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock)
    foreground = Foreground()
    seen: list[int] = []
    original = foreground.started

    def started() -> None:
        original()
        seen.append(foreground.in_flight)

    foreground.started = started  # type: ignore[method-assign]
    try:
        with TestClient(create_app(world.rt, foreground=foreground)) as client:
            assert client.get("/livez").status_code == 200
            assert client.get("/no/such/page").status_code == 404
        assert seen == [1, 1]
        assert foreground.in_flight == 0
    finally:
        world.client.close()
        world.rt.close()


def test_the_outbox_steps_aside_between_its_steps(tmp_path: Path, clock: FakeClock) -> None:
    world = make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock)
    foreground = Foreground(pause=0.01)
    foreground.started()
    try:
        outbox = Outbox(world.rt.app, ViewStore.beside(world.rt.app), foreground=foreground)
        summary = outbox.run_once()
        assert summary.position == summary.head > 0  # it read the whole log, pausing on the way
        assert foreground.waits >= 1
    finally:
        world.client.close()
        world.rt.close()


def test_metrics_tell_how_often_and_how_long_the_loops_stepped_aside(tmp_path: Path, clock: FakeClock) -> None:
    world = make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock)
    foreground = Foreground(pause=0.01)
    try:
        foreground.started()
        for _ in range(3):
            foreground.step_aside()
        foreground.finished()
        with TestClient(create_app(world.rt, foreground=foreground)) as client:
            text = client.get("/metrics").text
        assert "pingjing_background_waits_total 3.0" in text
        waited = next(line for line in text.splitlines() if line.startswith("pingjing_background_waited_seconds_total"))
        assert float(waited.split()[-1]) >= 0.03
        with TestClient(create_app(world.rt)) as client:  # nothing steps aside: no such figures
            assert "pingjing_background_waits" not in client.get("/metrics").text
    finally:
        world.client.close()
        world.rt.close()
