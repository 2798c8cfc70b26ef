"""Two ``pingjing serve`` processes on one store, many clients making moves on the same few cases at once.

Every answer is a success or a clear 409 ``conflict``, never a server error, and no update is
lost: each case holds exactly as many supervision records as requests were answered 200.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from domain import commands as c
from tests.conftest import SUPERVISOR
from tests.faults.support import OFFICE_TOKEN, county_store, open_app
from tests.http.test_serve import Served, serve

pytestmark = pytest.mark.slow
CASES = 3
REQUESTS_PER_CLIENT = 40
CLIENTS = 8


@pytest.fixture
def store(durable_database: str) -> str:
    """A SQLite file or a PostgreSQL schema, with the county."""
    county_store(durable_database)
    return durable_database


def test_two_processes_racing_on_the_same_cases_lose_no_update_and_answer_only_200_or_409(
    store: str, tmp_path: Path
) -> None:
    app = open_app(store)
    try:
        refs = [app.open_case(c.OpenCase(intake="hotline", kind="complaint", unit_code="PS1", summary=f"来电{n}"),
                              SUPERVISOR).case_ref for n in range(CASES)]
    finally:
        app.close()
    servers: list[Served] = [serve(store, "--no-demo", "--no-scheduler", workdir=tmp_path) for _ in range(2)]
    statuses: Counter[int] = Counter()
    accepted: Counter[str] = Counter()
    bodies: list[str] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        base = servers[worker % 2].base
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {OFFICE_TOKEN}"}) as http:
            for n in range(REQUESTS_PER_CLIENT):
                ref = refs[(worker + n) % CASES]
                answer = http.post(f"/api/v1/cases/{ref}/supervision",
                                   json={"target": "unit", "note": f"督办{worker}-{n}"})
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        accepted[ref] += 1
                    elif answer.status_code != 409 or answer.json()["error"] != "conflict":
                        bodies.append(answer.text)

    try:
        threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for running in servers:
            running.process.terminate()
            running.process.wait(60)
    assert bodies == []
    assert set(statuses) <= {200, 409}
    assert sum(statuses.values()) == CLIENTS * REQUESTS_PER_CLIENT
    app = open_app(store)
    try:
        for ref in refs:
            supervised = [e for e in app.case_events(ref) if type(e).__qualname__ == "Case.Supervised"]
            assert len(supervised) == accepted[ref], ref
    finally:
        app.close()
