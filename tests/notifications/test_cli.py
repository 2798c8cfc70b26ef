"""``pingjing notifications run|status|list|retry`` on a SQLite file store, in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adapters.support import event_count, run_cli
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.notifications.conftest import SECRET, SECRET_ENV, free_port, write_config


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> str:
    """A SQLite file with the tiny county and one pushed case."""
    path = str(tmp_path / "events.sqlite3")
    app = make_app(path, clock)
    County(app, clock).setup().open_case()
    app.close()
    return path


def test_status_shows_the_lag_before_a_run_and_the_counts_after_it(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    head = event_count(store)
    assert run_cli("--database", store, "notifications", "status", "--format", "json") == 0
    before = json.loads(capsys.readouterr().out)
    assert before == {"position": 0, "head": head, "lag": head, "channels": {}}

    assert run_cli("--database", store, "notifications", "run", "--once") == 0
    assert "requested 2 (already 0), delivered 2" in capsys.readouterr().out

    assert run_cli("--database", store, "notifications", "status", "--format", "json") == 0
    after = json.loads(capsys.readouterr().out)
    assert after["lag"] == 0
    assert after["position"] == after["head"] == event_count(store)
    assert after["channels"] == {"log": {"pending": 0, "sending": 0, "delivered": 2, "dead": 0}}
    assert run_cli("--database", store, "notifications", "status") == 0
    table = capsys.readouterr().out
    assert "│ log" in table
    assert f"outbox position {after['position']}, head {after['head']}, lag 0" in table


def test_a_dead_letter_is_listed_and_an_administrator_retries_it_from_the_command_line(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path / "notifications.toml",
        f'[office]\nwebhook = true\n[webhook]\nurl = "http://127.0.0.1:{free_port()}/hook"\n'
        f'secret_env = "{SECRET_ENV}"\nmax_attempts = 1\n',
    )
    monkeypatch.setenv("PINGJING_NOTIFICATIONS", str(config))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert run_cli("--database", store, "notifications", "run", "--once") == 0
    assert "dead 1" in capsys.readouterr().out

    assert run_cli("--database", store, "notifications", "list", "--dead", "--format", "json") == 0
    [dead] = json.loads(capsys.readouterr().out)
    assert (dead["channel"], dead["recipient"], dead["status"], dead["attempts"]) == ("webhook", "office", "dead", 1)
    assert dead["last_error"].startswith("cannot reach 127.0.0.1:")
    assert run_cli("--database", store, "notifications", "list", "--limit", "2", "--format", "json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 2

    before = event_count(store)
    retry = ("--database", store, "notifications", "retry", dead["id"], "--reason", "地址已更正")
    assert run_cli(*retry, "--by", "supervisor:dc-wang") == 1
    assert "may not retry_notification" in capsys.readouterr().err
    assert event_count(store) == before
    assert run_cli(*retry, "--by", "admin:it-li") == 0
    assert "is pending again" in capsys.readouterr().out
    assert run_cli(*retry, "--by", "admin:it-li") == 1
    assert "only a dead letter can be retried" in capsys.readouterr().err


def test_a_bad_notifications_file_stops_the_outbox_before_it_writes_anything(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "bad.toml", "[office]\nwebhook = true\n")
    monkeypatch.setenv("PINGJING_NOTIFICATIONS", str(config))
    before = event_count(store)
    assert run_cli("--database", store, "notifications", "run", "--once") == 2
    assert f"PINGJING_NOTIFICATIONS {config}: office.webhook is true but there is no [webhook] table" in (
        capsys.readouterr().err
    )
    assert event_count(store) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("retry", "not-a-uuid", "--reason", "x", "--by", "admin:a"), "is not a notification id"),
        (("list", "--limit", "0"), "is not a positive whole number"),
        (("run", "--interval", "-1"), "is not a positive number of seconds"),
    ],
)
def test_bad_arguments_are_usage_errors(
    store: str, argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", store, "notifications", *argv) == 2
    assert message in capsys.readouterr().err


def test_run_keeps_delivering_until_interrupted(store: str, tmp_path: Path) -> None:
    log = tmp_path / "outbox.log"
    env = {**os.environ, "PINGJING_DATABASE": store, "PINGJING_LOG_FORMAT": "json"}
    env.pop("PINGJING_NOTIFICATIONS", None)
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "notifications", "run", "--interval", "0.1"],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and log.read_bytes().count(b'"notification_delivered"') < 2:
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=30)
    assert status == 0
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    delivered = [line for line in lines if line["event"] == "notification_delivered"]
    assert sorted(line["recipient"] for line in delivered) == ["office", "unit:PS1"]
