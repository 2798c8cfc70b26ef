"""``pingjing scheduler run`` as its own process: the SLA clock and the outbox together, to a real receiver.

A case of 2021 is opened on a SQLite file; the scheduler process (on the real clock, five
years later) records its overdue warnings and breaches at once, and its outbox delivers
the push, the warnings and the breaches to a local webhook receiver that checks every
signature. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from adapters.bootstrap import bootstrap
from adapters.cli.scheduling import leader_jobs
from adapters.settings import Settings
from adapters.store import resolve
from domain.application import PingjingApp
from domain.ids import LOCAL_TZ
from scheduler.service import LeaderJob
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.notifications.conftest import SECRET, SECRET_ENV, WebhookReceiver, write_config


def test_the_scheduler_process_records_breaches_and_its_outbox_delivers_them(
    tmp_path: Path, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    database = tmp_path / "events.sqlite3"
    app = make_app(str(database), clock)
    ref = County(app, clock).setup().open_case()
    app.close()
    config = write_config(
        tmp_path / "notifications.toml",
        f"""
        [office]
        webhook = true
        [webhook]
        url = "{receiver.url}"
        secret_env = "{SECRET_ENV}"
        backoff_seconds = 1
        """,
    )
    env = {
        **os.environ,
        "PINGJING_DATABASE": str(database),
        "PINGJING_NOTIFICATIONS": str(config),
        SECRET_ENV: SECRET,
        "PINGJING_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "scheduler", "run", "--sync-seconds", "0.2", "--outbox-seconds",
         "0.2", "--without", "reports"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Long overdue: a breach each, no warning (a warning never follows its own breach).
        wanted = {("case_pushed", "office"), ("sla_breach", "office")}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with receiver.lock:
                got = {(a["kind"], a["recipient"]) for a in receiver.accepted if a["payload"].get("case_ref") == ref}
            if wanted <= got:
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert wanted <= got, f"the receiver got {sorted(got)}; scheduler stderr:\n{err[-3000:]}"
    assert process.returncode == 0, err[-3000:]
    assert all(r.status in (200, 500) for r in receiver.requests), "every request carried a valid signature"
    with receiver.lock:
        ids = [a["id"] for a in receiver.accepted]
    assert len(ids) == len(set(ids)), "each notification is accepted once"

    app = PingjingApp(env=resolve(str(database)).env, observers=[])
    try:
        events = app.case_events(ref)
        breaches = [e for e in events if type(e).__name__ == "SlaBreached"]
        assert not [e for e in events if type(e).__name__ == "SlaWarned"]
        assert {e.step for e in breaches} >= {"contact", "feedback"}
        assert len(breaches) == len({(e.step, e.round) for e in breaches}), "one breach per step and round"
    finally:
        app.close()


def test_the_leader_jobs_are_the_outbox_and_the_report_schedule(tmp_path: Path) -> None:
    settings = Settings(database=str(tmp_path / "events.sqlite3"), reports_dir=tmp_path / "reports")
    rt = bootstrap(settings, configure_logging=False)
    try:
        jobs: list[LeaderJob] = leader_jobs(rt)
        assert [j.id for j in jobs] == [
            "outbox", "report-weekly", "report-monthly", "report-catch-up", "privacy-retention", "log-seal",
        ]
        weekly, monthly = jobs[1].trigger, jobs[2].trigger
        sunday = datetime(2021, 11, 14, 12, 0, tzinfo=LOCAL_TZ)
        assert weekly.get_next_fire_time(None, sunday) == datetime(2021, 11, 15, 9, 0, tzinfo=LOCAL_TZ)
        assert monthly.get_next_fire_time(None, sunday) == datetime(2021, 12, 1, 9, 0, tzinfo=LOCAL_TZ)
        assert [j.id for j in leader_jobs(rt, without=["outbox", "reports", "seals"])] == ["privacy-retention"]
        assert [j.id for j in leader_jobs(rt, without=["outbox", "reports", "retention"])] == ["log-seal"]
        assert jobs[-1].trigger.get_next_fire_time(None, sunday) == datetime(2021, 11, 15, 0, 10, tzinfo=LOCAL_TZ)
        assert [j.id for j in leader_jobs(rt, without=["outbox", "reports", "retention", "seals"])] == []
    finally:
        rt.close()
