"""The scheduler killed while it fires a backlog of breaches: after a restart each breach is recorded once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from domain import commands as c
from domain.case import Case
from tests.conftest import CITIZEN, County, make_app
from tests.fakes import FakeClock
from tests.faults.support import cli, open_app

pytestmark = pytest.mark.slow
CASES = 1_500


def breaches(database: str) -> Counter[tuple[str, str, int]]:
    """How many times each (case, step, round) was breached, from the log."""
    app = open_app(database)
    try:
        return Counter(
            (str(event.originator_id), str(event.step), int(event.round))
            for _, event in app.iter_events(batch=5000)
            if type(event).__qualname__ == "Case.SlaBreached"
        )
    finally:
        app.close()


def first_breach(database: str, seconds: float) -> None:
    """Wait until the log holds a breach: a count in SQL, cheap enough to look every few
    milliseconds (the backlog is written in three transactions, a fraction of a second apart)."""
    topic = get_topic(Case.SlaBreached)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            if conn.execute("SELECT 1 FROM stored_events WHERE topic = ? LIMIT 1", (topic,)).fetchone():
                return
        time.sleep(0.002)


def wait_for(database: str, at_least: int, seconds: float) -> Counter[tuple[str, str, int]]:
    """Poll the log until ``at_least`` breaches are recorded (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    found: Counter[tuple[str, str, int]] = Counter()
    while time.monotonic() < deadline:
        found = breaches(database)
        if len(found) >= at_least:
            break
        time.sleep(0.05)
    return found


def test_a_scheduler_killed_while_firing_records_each_breach_once_after_its_restart(tmp_path: Path) -> None:
    database = str(tmp_path / "overdue.sqlite3")
    # Cases opened three days ago and left alone: their contact deadlines have all passed.
    clock = FakeClock(datetime.now(UTC) - timedelta(days=3))
    app = make_app(database, clock)
    try:
        County(app, clock).setup()
        rating = c.SubmitRating.model_validate({"target": "officer", "key": "100102", "verdict": "dissatisfied",
                                                "service_score": 1, "attitude_score": 1, "efficiency_score": 1})
        app.execute_batch([(rating, CITIZEN)] * CASES)
    finally:
        app.close()

    first = cli(database, "scheduler", "run", "--without", "outbox", "--without", "reports",
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    first_breach(database, 120)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    seen = breaches(database)
    assert 0 < len(seen) < CASES, "the first scheduler was not caught while firing"

    second = cli(database, "scheduler", "run", "--without", "outbox", "--without", "reports",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        final = wait_for(database, CASES, 180)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    contact = {key: n for key, n in final.items() if key[1] == "contact"}
    assert len(contact) == CASES
    assert set(final.values()) == {1}
