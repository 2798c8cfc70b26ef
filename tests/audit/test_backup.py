"""``pingjing backup`` and ``pingjing restore`` on SQLite, and the pg_dump / pg_restore procedure on PostgreSQL.

Other processes play ``pingjing serve``: one keeps writing while backups are taken, one
keeps the store open while a restore is attempted.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.store import connect_postgres, resolve
from domain import commands as c
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from tests.adapters.support import run_cli
from tests.audit.conftest import Raw, Story, tell
from tests.conftest import CITIZEN, REQUIRE_POSTGRES, make_app
from tests.fakes import FakeClock

ROOT = Path(__file__).resolve().parents[2]

#: A writer process: rates officer 100102 until told to stop (a line on stdin), then prints how many.
WRITER = """
import sys, threading
from adapters.store import resolve
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.values import Actor, Channel, Role
app = PingjingApp(env=resolve(sys.argv[1]).env)
citizen = Context(Actor("anonymous", Role.CITIZEN), Channel.QR)
rating = c.SubmitRating(target="officer", key="100102", verdict="satisfied",
                        service_score=5, attitude_score=5, efficiency_score=5)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
app.submit_rating(rating, citizen)
print("ready", flush=True)
n = 1
while not stop.is_set():
    app.execute_batch([(rating, citizen)] * 5)
    n += 5
app.close()
print(n, flush=True)
"""

#: A process holding the store open, idle, as a running service does between requests.
HOLDER = """
import sys
from adapters.store import resolve
from domain.application import PingjingApp
app = PingjingApp(env=resolve(sys.argv[1]).env)
app.recorder.max_notification_id()
print("ready", flush=True)
sys.stdin.readline()
app.close()
"""


class Child:
    """A Python process running one of the scripts above from the repository's root."""

    def __init__(self, script: str, database: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script, database], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            _, err = self.process.communicate(timeout=30)
            raise AssertionError(f"the child process did not start: {line!r}\n{err}")

    def stop(self) -> str:
        """Tell it to finish; its last line."""
        out, err = self.process.communicate("stop\n", timeout=60)
        assert self.process.returncode == 0, err
        return out.strip()


@pytest.fixture
def sqlite_story(tmp_path: Path, clock: FakeClock) -> Story:
    """The story in a SQLite file."""
    return tell(str(tmp_path / "live" / "events.sqlite3"), clock)


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = run_cli(*argv, "--format", "json")
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def verified(database: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, result = cli_json(capsys, "--database", database, "audit", "verify")
    assert code == 0, result
    return result


# -- backup ----------------------------------------------------------------------------------------------


def test_a_backup_of_a_store_being_written_is_consistent_and_verifies(
    sqlite_story: Story, tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    live = sqlite_story.database
    app = make_app(live, clock)
    try:
        Runner(app, ViewStore.beside(app), ALL).catch_up()  # the views, in the same file
    finally:
        app.close()
    writer = Child(WRITER, live)
    copies = []
    try:
        for n in range(3):
            target = tmp_path / "backups" / f"copy-{n}.sqlite3"
            code, made = cli_json(capsys, "--database", live, "backup", str(target))
            assert code == 0, made
            assert made["audit_verify"] == "intact"
            copies.append((target, made))
    finally:
        written = int(writer.stop())
    assert written > 1
    heads = [made["head_position"] for _, made in copies]
    assert heads == sorted(heads)
    assert heads[-1] > sqlite_story.head, "the writer was writing while the copies were taken"
    for target, made in copies:
        result = verified(str(target), capsys)
        assert (result["head_position"], result["head_hash"]) == (made["head_position"], made["head_hash"])
        assert made["events"] == made["head_position"]
        assert not Path(f"{target}-wal").exists(), "a backup is one self-contained file"
        with sqlite3.connect(target) as conn:  # the views came along, in the same file
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            tracked = conn.execute("SELECT COUNT(*) FROM tracking").fetchone()[0]
        assert {"stored_events", "stored_events_chain", "tracking"} <= tables
        assert tracked >= len(ALL)
    assert verified(live, capsys)["head_position"] == sqlite_story.head + written


def test_backup_refuses_to_overwrite_and_needs_a_sqlite_store(
    sqlite_story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken.sqlite3"
    taken.write_bytes(b"keep me")
    assert run_cli("--database", sqlite_story.database, "backup", str(taken)) == 1
    assert "already exists" in capsys.readouterr().err
    assert taken.read_bytes() == b"keep me"
    assert run_cli("--database", "memory", "backup", str(tmp_path / "m.sqlite3")) == 2
    assert "memory store" in capsys.readouterr().err


# -- restore ---------------------------------------------------------------------------------------------


def test_restore_brings_a_backup_back_and_the_store_goes_on_from_it(
    sqlite_story: Story, tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    live = sqlite_story.database
    backup = tmp_path / "backup.sqlite3"
    code, made = cli_json(capsys, "--database", live, "backup", str(backup))
    assert code == 0
    app = make_app(live, clock)  # life goes on after the backup...
    try:
        app.submit_rating(c.SubmitRating(target="officer", key="100102", verdict="dissatisfied", service_score=1,
                                         attitude_score=1, efficiency_score=1), CITIZEN)
    finally:
        app.close()
    assert verified(live, capsys)["head_position"] > made["head_position"]

    code, restored = cli_json(capsys, "--database", live, "restore", str(backup))  # ...and is rolled back

    assert code == 0, restored
    assert (restored["head_position"], restored["head_hash"], restored["audit_verify"]) == (
        made["head_position"], made["head_hash"], "intact",
    )
    after = verified(live, capsys)
    assert (after["head_position"], after["head_hash"]) == (made["head_position"], made["head_hash"])
    assert not Path(f"{live}.restore-partial").exists()
    app = make_app(live, clock)  # the restored store takes new events, chained on from its head
    try:
        app.submit_rating(c.SubmitRating(target="officer", key="100102", verdict="satisfied", service_score=5,
                                         attitude_score=5, efficiency_score=5), CITIZEN)
    finally:
        app.close()
    assert verified(live, capsys)["head_position"] == made["head_position"] + 1


@pytest.fixture
def backup_file(sqlite_story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A good backup of the story's store."""
    target = tmp_path / "backup.sqlite3"
    assert run_cli("--database", sqlite_story.database, "backup", str(target)) == 0
    capsys.readouterr()
    return target


def test_restore_refuses_while_another_process_has_the_store_open(
    sqlite_story: Story, backup_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = Child(HOLDER, sqlite_story.database)
    try:
        before = Path(sqlite_story.database).read_bytes()
        assert run_cli("--database", sqlite_story.database, "restore", str(backup_file)) == 1
        err = capsys.readouterr().err
        assert "is in use by another process" in err
        assert "nothing was written" in err
        assert Path(sqlite_story.database).read_bytes() == before
        assert not Path(f"{sqlite_story.database}.restore-partial").exists()
    finally:
        holder.stop()
    assert run_cli("--database", sqlite_story.database, "restore", str(backup_file)) == 0, "idle now: restored"


@pytest.mark.parametrize("candidate", ["tampered", "not sqlite", "no events", "missing", "itself"])
def test_restore_refuses_a_file_that_is_not_a_sound_pingjing_store(
    sqlite_story: Story, backup_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], candidate: str
) -> None:
    path = tmp_path / "candidate.sqlite3"
    expected = {
        "tampered": "does not pass audit verify (position",
        "not sqlite": "is not a SQLite database",
        "no events": "is not a pingjing store",
        "missing": "there is no file",
        "itself": "is the configured store itself",
    }[candidate]
    if candidate == "tampered":
        shutil.copyfile(backup_file, path)
        raw = Raw(str(path))
        position = raw.position_of("domain.ratings:Rating.Submitted", 0)
        raw.set_state(position, raw.row(position)[3] + b" ")
    elif candidate == "not sqlite":
        path.write_bytes(b"hello, not a database at all")
    elif candidate == "no events":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE something (x)")
    elif candidate == "itself":
        path = Path(sqlite_story.database)
    store = Path(sqlite_story.database)
    before = store.read_bytes()

    assert run_cli("--database", sqlite_story.database, "restore", str(path)) == 1

    assert expected in capsys.readouterr().err
    assert store.read_bytes() == before, "nothing was written"
    assert not Path(f"{store}.restore-partial").exists()


def test_restore_is_for_sqlite_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", "memory", "restore", str(tmp_path / "x.sqlite3")) == 2
    assert "memory store" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_postgres_store_points_at_pg_dump(postgres_database: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", postgres_database, "backup", str(tmp_path / "x.sqlite3")) == 2
    assert "pg_dump" in capsys.readouterr().err
    assert run_cli("--database", postgres_database, "restore", str(tmp_path / "x.sqlite3")) == 2
    assert "pg_restore" in capsys.readouterr().err


# -- PostgreSQL: pg_dump and pg_restore -------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if found is None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PINGJING_REQUIRE_POSTGRES=1 but {name} is not installed")
        pytest.skip(f"{name} is not installed")
    return found


@pytest.mark.postgres
def test_the_pg_dump_and_pg_restore_procedure_gives_a_store_that_verifies(
    postgres_url: str, postgres_database: str, tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """README "Backup and restore": dump the schema, restore it into a new database, rename the schema."""
    story = tell(postgres_database, clock)
    original = verified(postgres_database, capsys)
    env = resolve(postgres_url).env
    schema = resolve(postgres_database).schema
    assert schema is not None
    server = [f"--host={env['POSTGRES_HOST']}", f"--port={env['POSTGRES_PORT']}", f"--username={env['POSTGRES_USER']}"]
    dump = tmp_path / "pingjing.dump"
    subprocess.run(  # noqa: S603 - the installed client tool, fixed arguments
        [_tool("pg_dump"), *server, "--format=custom", f"--schema={schema}", f"--file={dump}",
         env["POSTGRES_DBNAME"]],
        check=True, capture_output=True,
    )
    target = f"pj_restore_{uuid.uuid4().hex[:10]}"
    with connect_postgres(env) as conn:
        conn.execute(f"CREATE DATABASE {target}")
    try:
        subprocess.run(  # noqa: S603
            [_tool("pg_restore"), *server, "--no-owner", f"--dbname={target}", str(dump)],
            check=True, capture_output=True,
        )
        base = postgres_url.rsplit("/", 1)[0]
        restored = f"{base}/{target}?schema={schema}"
        result = verified(restored, capsys)
        assert (result["head_position"], result["head_hash"], result["seals"]) == (
            original["head_position"], original["head_hash"], 1,
        )
        assert (result["head_position"]) == story.head

        # Under another schema name, too: nothing in the chain depends on it.
        renamed = f"pj_renamed_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dbname=target, host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]),
                             user=env["POSTGRES_USER"], autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA {schema} RENAME TO {renamed}")
        moved = f"{base}/{target}?schema={renamed}"
        assert verified(moved, capsys)["head_hash"] == original["head_hash"]
        app = make_app(moved, clock)  # and the restored store goes on, chained from its head
        try:
            app.submit_rating(c.SubmitRating(target="officer", key="100102", verdict="satisfied", service_score=5,
                                             attitude_score=5, efficiency_score=5), CITIZEN)
        finally:
            app.close()
        assert verified(moved, capsys)["head_position"] == story.head + 1
    finally:
        with connect_postgres(env) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
