"""Killing the leading scheduler process hands the lead over (real processes, real PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import County, make_app
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres


def start_scheduler(database: str, log: Path) -> subprocess.Popen[bytes]:
    """``pingjing scheduler run`` in its own process, logging JSON lines to ``log``."""
    env = {**os.environ, "PINGJING_DATABASE": database, "PINGJING_LOG_FORMAT": "json"}
    return subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "scheduler", "run", "--sync-seconds", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )


def leading(log: Path) -> bool:
    return log.exists() and b"scheduler_leading" in log.read_bytes()


def wait_for(condition, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_killing_the_leader_hands_the_lead_to_the_other_process_which_records_each_breach_once(
    postgres_database: str, tmp_path: Path
) -> None:
    # The processes run on the real clock; the case was opened eight days ago, so its contact
    # and feedback deadlines have passed and fire as soon as a scheduler leads.
    clock = FakeClock(datetime.now(UTC) - timedelta(days=8))
    app = make_app(postgres_database, clock)
    ref = County(app, clock).setup().open_case()
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_scheduler(postgres_database, logs[0])
    try:
        assert wait_for(lambda: leading(logs[0])), logs[0].read_text(errors="replace")
        second = start_scheduler(postgres_database, logs[1])
        try:
            time.sleep(1.5)
            assert not leading(logs[1]), "the second process must not lead while the first does"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            assert wait_for(lambda: leading(logs[1])), logs[1].read_text(errors="replace")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
    breaches = [(e.step, e.round) for e in app.case_events(ref) if type(e).__name__ == "SlaBreached"]
    assert sorted(breaches) == [("contact", 1), ("feedback", 1)]
    app.close()

