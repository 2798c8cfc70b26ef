"""The multi-process deployment: ``serve --workers N`` for HTTP, ``projections run`` and two ``scheduler run``
in processes of their own, all on one store; load through every API worker, and every acknowledged
rating counted in the views exactly once.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from adapters.settings import Settings
from domain.values import QrSubject
from projections.store import ViewStore
from tests.faults.support import case_integrity, cli, county_store, open_app
from tests.http.test_serve import Served, serve, wait_healthy

pytestmark = pytest.mark.slow
CLIENTS = 8
PER_CLIENT = 60


@pytest.fixture
def store(durable_database: str) -> str:
    """A SQLite file or a PostgreSQL schema with the county and officer 100102's code."""
    county_store(durable_database)
    return durable_database


def all_workers_answer(base: str, workers: int, seconds: float = 60) -> bool:
    """Whether ``workers`` distinct processes answer ``/healthz`` within ``seconds`` (they start one by one)."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(seen) < workers:
        answer = httpx.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=10)
        seen.add(int(answer.json()["process"]))
    return len(seen) == workers


def rate(http: httpx.Client, scan: str, worker: int, n: int) -> tuple[int, str | None]:
    http.cookies.set("pj_device", f"{worker:02d}{n:020d}")
    unhappy = n % 3 == 0
    form = {"verdict": "dissatisfied" if unhappy else "satisfied", "service_score": "3", "attitude_score": "3",
            "efficiency_score": "3"}
    if unhappy:
        form |= {"complaint": f"部署测试{worker}-{n}", "phone": "13400000000"}
    answer = http.post(scan, data=form)
    found = re.search(r'id="case-ref">([^<]+)<', answer.text)
    return answer.status_code, found.group(1) if found else None


def counted_ratings(database: str) -> int:
    """The county's ratings as the activity view counts them, over every month."""
    app = open_app(database)
    try:
        rows = ViewStore.beside(app).query(
            "SELECT period, ratings FROM pj_activity_counts WHERE scope = 'county'")
    finally:
        app.close()
    return sum(int(value) for period, value in rows if re.fullmatch(r"\d{4}-\d{2}", str(period)))


def lag(database: str, tmp_path: Path) -> int:
    """How far the furthest-behind projection is, as ``pingjing projections status`` says."""
    status = cli(database, "projections", "status", "--format", "json", cwd=tmp_path)
    out, _ = status.communicate(timeout=60)
    return max(int(p["lag"]) for p in json.loads(out))


def test_every_rating_acknowledged_by_any_worker_is_counted_once_by_the_separate_projection_process(
    store: str, tmp_path: Path
) -> None:
    keyring = load_keyring(Settings(qr_key_file=tmp_path / "var" / "qr-keys.json"))
    scan = f"/s/{make_token(keyring, QrSubject.OFFICER, '100102', 1)}"
    env = {"PINGJING_CITIZEN_POSTS_PER_MINUTE": "0"}
    running: Served = serve(store, "--no-demo", "--no-projections", "--no-scheduler", "--workers", "3",
                            workdir=tmp_path, env=env)
    others = [cli(store, "projections", "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)]
    others += [cli(store, "scheduler", "run", "--without", "outbox", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=tmp_path) for _ in range(2)]
    statuses: Counter[int] = Counter()
    acknowledged: list[str | None] = []
    processes: set[int] = set()
    lock = threading.Lock()

    def client(worker: int) -> None:
        # A connection per request, so that the kernel spreads them over the workers.
        with httpx.Client(base_url=running.base, timeout=30, headers={"Connection": "close"}) as http:
            for n in range(PER_CLIENT):
                status, ref = rate(http, scan, worker, n)
                health: Any = http.get("/healthz").json()
                with lock:
                    statuses[status] += 1
                    processes.add(int(health["process"]))
                    if status == 200:
                        acknowledged.append(ref)

    try:
        wait_healthy(running.base)
        assert all_workers_answer(running.base, 3)
        threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and lag(store, tmp_path) > 0:
            time.sleep(0.5)
    finally:
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(60) == 0
        for process in others:
            process.send_signal(signal.SIGTERM)
            process.wait(60)

    assert statuses == Counter({200: CLIENTS * PER_CLIENT})
    assert len(processes) == 3  # every worker answered
    assert running.process.pid not in processes  # the parent runs no HTTP of its own
    assert counted_ratings(store) == len(acknowledged)  # each once, none lost, none twice
    app = open_app(store)
    try:
        integrity = case_integrity(app)
        board = {row[0] for row in ViewStore.beside(app).query("SELECT case_ref FROM pj_board")}
    finally:
        app.close()
    refs = [ref for ref in acknowledged if ref]
    assert len(refs) == len(set(refs)) == CLIENTS * len(range(0, PER_CLIENT, 3))
    assert set(refs) <= integrity["refs"]
    assert set(refs) <= board
