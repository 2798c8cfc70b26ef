"""``pingjing serve`` as a real process on 127.0.0.1: it answers, and a signal stops it cleanly, losing nothing."""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import uvicorn

from adapters.cli import serve as serve_command
from adapters.notify.outbox import TRACKING as OUTBOX_TRACKING
from adapters.store import resolve
from domain import commands as c
from domain.aggregate import event_topics
from domain.application import PingjingApp
from domain.notifications import Notification
from domain.tokens import hash_token
from projections.store import ViewStore
from tests.conftest import ADMIN, County, make_app
from tests.fakes import FakeClock

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"pingjing serve on (http://127\.0\.0\.1:\d+)")
SECRET = "pj_serve_test_token_of_the_office"  # noqa: S105 - a test token, made below
START_SECONDS = 60


@dataclass
class Served:
    """A running ``pingjing serve`` and where it answers."""

    process: subprocess.Popen[str]
    base: str
    printed: list[str]
    log: Path

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` and wait for the exit status."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


def read_until(stream: IO[str], pattern: re.Pattern[str], seconds: float, printed: list[str]) -> re.Match[str]:
    """Lines from ``stream`` until one matches (the process is given ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        printed.append(line)
        found = pattern.search(line)
        if found:
            return found
    pytest.fail(f"no line matching {pattern.pattern} in {seconds} s; printed: {''.join(printed)}")


def serve(
    database: Path | str,
    *extra: str,
    seconds: float = START_SECONDS,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> Served:
    """Start ``pingjing serve`` on a free loopback port; return once it printed its address.

    ``database`` is a SQLite file (the process runs beside it) or a URL with ``workdir`` to run in;
    ``env``: more settings.
    """
    env = {**os.environ, "PINGJING_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", **(env or {})}
    if isinstance(database, Path):
        workdir = workdir or database.parent
    assert workdir is not None, "a database URL needs a workdir"
    log = workdir / f"serve-{time.monotonic_ns()}.log"
    with log.open("w") as stderr:  # a file, not a pipe nobody reads while the process runs
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [sys.executable, "-m", "adapters.cli", "--database", str(database), "serve", "--host", "127.0.0.1",
             "--port", "0", *extra],
            cwd=workdir, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=stderr,
            text=True,
        )
    printed: list[str] = []
    assert process.stdout is not None
    found = read_until(process.stdout, URL, seconds, printed)
    read_until(process.stdout, re.compile("Ctrl-C stops"), 10, printed)
    return Served(process, found.group(1), printed, log)


def wait_healthy(base: str, seconds: float = 30, **expected: Any) -> dict[str, Any]:
    """Poll ``/healthz`` until it answers 200 with ``expected`` fields."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/healthz", timeout=5)
            last = r.json()
            if r.status_code == 200 and all(last.get(k) == v for k, v in expected.items()):
                return dict(last)
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.2)
    pytest.fail(f"{base}/healthz did not become healthy with {expected}: {last}")


@pytest.fixture
def county_store(tmp_path: Path) -> Path:
    """A SQLite file with the tiny county and a supervisor's token."""
    path = tmp_path / "served.sqlite3"
    clock = FakeClock(datetime.now(UTC))
    app = make_app(str(path), clock)
    try:
        County(app, clock).setup()
        token = c.CreateApiToken(token_hash=hash_token(SECRET), role="supervisor", principal="dc-wang")
        app.create_api_token(token, ADMIN)
    finally:
        app.close()
    return path


@pytest.fixture
def served(county_store: Path) -> Iterator[Served]:
    """``pingjing serve --no-demo`` on that file, killed if a test leaves it running."""
    running = serve(county_store, "--no-demo")
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_and_a_signal_stops_it_cleanly_losing_nothing(
    served: Served, county_store: Path, sig: signal.Signals
) -> None:
    health = wait_healthy(served.base, scheduler_leader="yes")
    assert health["store"]["reachable"] is True
    assert any("/docs" in line for line in served.printed)
    headers = {"Authorization": f"Bearer {SECRET}"}
    opened = httpx.post(f"{served.base}/api/v1/cases", headers=headers, timeout=10, json={
        "intake": "hotline", "kind": "complaint", "unit_code": "PS1", "summary": "出警太慢"})
    assert opened.status_code == 200, opened.text
    ref = opened.json()["case_ref"]
    board = httpx.get(f"{served.base}/api/v1/cases", headers=headers, timeout=10).json()
    assert ref in [row["ref"] for row in board]

    assert served.stop(sig) == 0
    assert "pingjing serve: stopped" in served.log.read_text()
    app = make_app(str(county_store), FakeClock(datetime.now(UTC)))
    try:
        assert app.get_case(ref).state.value == "pushed"  # acknowledged, so on disk
    finally:
        app.close()


def test_serve_refuses_a_port_it_cannot_have(served: Served, county_store: Path) -> None:
    port = served.base.rsplit(":", 1)[1]
    taken = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "adapters.cli", "--database", str(county_store), "serve", "--port", port, "--no-demo"],
        cwd=county_store.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert taken.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr


@pytest.mark.slow
def test_serve_loads_the_demo_county_into_an_empty_store(tmp_path: Path) -> None:
    running = serve(tmp_path / "empty.sqlite3", "--no-scheduler", seconds=240)
    try:
        printed = "".join(running.printed)
        assert "empty store: loading the demo county" in printed
        assert re.search(r"Cao case \(曹某案\): PJ-20211109-[0-9A-Z]{6}", printed)
        health = wait_healthy(running.base, scheduler_leader="disabled")
        assert health["store"]["head"] > 10_000
        assert all(p["lag"] == 0 for p in health["projections"].values())
        # the printed citizen page is a real officer's code: rate through it
        scan = re.search(r"citizen page +(http://\S+/s/\S+)", printed)
        assert scan, printed
        page = httpx.get(scan.group(1), timeout=10)
        assert page.status_code == 200
        assert "您正在评价民警" in page.text
        rated = httpx.post(scan.group(1), timeout=10, data={
            "verdict": "dissatisfied", "service_score": "2", "attitude_score": "2", "efficiency_score": "2",
            "complaint": "等候太久", "phone": "13900139000"})
        ref = re.search(r'id="case-ref">([^<]+)<', rated.text)
        assert ref, rated.text
        assert running.stop(signal.SIGTERM) == 0
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=30)
    # The demo's history is not news: the outbox starts after it, so nobody is notified of it.
    app = PingjingApp(env=resolve(str(tmp_path / "empty.sqlite3")).env, observers=[])
    try:
        assert app.get_case(ref.group(1)).summary == "等候太久"  # acknowledged, so on disk
        assert ViewStore.beside(app).position(OUTBOX_TRACKING) == health["store"]["head"]
        assert not app.recorder.select_notifications(start=1, limit=1, topics=event_topics(Notification))
    finally:
        app.close()


linux_only = pytest.mark.skipif(not serve_command.SPREADS_CONNECTIONS,
                                reason="the kernel spreads connections over a group of listeners on Linux only")


@linux_only
def test_the_workers_listen_each_on_a_socket_of_their_own_and_the_kernel_spreads_connections_over_them() -> None:
    socks = serve_command.listeners("127.0.0.1", 0, 3)
    clients: list[socket.socket] = []
    try:
        port = socks[0].getsockname()[1]
        assert {s.getsockname()[1] for s in socks} == {port}
        assert len({s.fileno() for s in socks}) == 3
        for _ in range(60):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        accepted = []
        for sock in socks:
            sock.setblocking(False)
            taken = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                taken += 1
            accepted.append(taken)
    finally:
        for each in (*clients, *socks):
            each.close()
    assert sum(accepted) == 60
    assert all(accepted), f"every listener takes its share of connections: {accepted}"


def test_one_process_listens_on_one_socket_of_its_own() -> None:
    socks = serve_command.listeners("127.0.0.1", 0, 1)
    try:
        assert len(socks) == 1
        assert socks[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0, "no other process may join it"
    finally:
        socks[0].close()


@linux_only
def test_a_worker_started_again_accepts_on_the_socket_of_the_one_it_replaces() -> None:
    socks = serve_command.listeners("127.0.0.1", 0, 2)
    try:
        workers = serve_command.Workers(argparse.Namespace(database=None, workers=2), socks)
        for index, sock in enumerate(socks):
            command = workers.command(index)
            assert command[command.index("--listen-fd") + 1] == str(sock.fileno())
    finally:
        for sock in socks:
            sock.close()


@linux_only
def test_a_burst_of_long_lived_connections_is_spread_over_both_workers(county_store: Path) -> None:
    """16 keep-alive connections opened at once (as the bench's clients, or a proxy's pool) are
    answered by both worker processes, not all by whichever accepted first."""
    running = serve(county_store, "--no-demo", "--workers", "2")
    try:
        wait_healthy(running.base)
        port = int(running.base.rsplit(":", 1)[1])
        conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(16)]
        answered: set[int] = set()
        try:
            for conn in conns:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for conn in conns:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
                while len(body) < length:
                    body += conn.recv(65536)
                answered.add(int(json.loads(body)["process"]))
        finally:
            for conn in conns:
                conn.close()
        assert len(answered) == 2, f"connections answered by processes {answered}"
    finally:
        assert running.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("workers", ["0", "65"])
def test_serve_refuses_a_number_of_workers_it_cannot_run(county_store: Path, workers: str) -> None:
    refused = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "adapters.cli", "--database", str(county_store), "serve", "--workers", workers,
         "--no-demo"],
        cwd=county_store.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert refused.returncode == 2
    assert f"--workers {workers}: between 1 and 64" in refused.stderr


def test_a_serving_process_freezes_what_it_holds_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector's full passes skip what the process holds once started (the slowest requests waited on them)."""
    seen: list[int] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(gc.get_freeze_count()))
    sock = socket.socket()
    try:
        gc.unfreeze()
        serve_command._http(object(), sock)
    finally:
        gc.unfreeze()
        sock.close()
    assert seen
    assert seen[0] > 1000, "serving began with nothing frozen"
