"""The disk under a SQLite store fills up, then turns read-only: clear refusals, nothing corrupted, and
the service takes submissions again once the cause is gone, without a restart.

The store lives on a small tmpfs of its own, mounted for the test (it needs the right to mount,
which CI's root has); the disk is filled with a file, then remounted read-only.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from adapters.settings import Settings
from domain.values import QrSubject
from tests.faults.support import OFFICE_TOKEN, assert_whole, cli, county_store, rating_lines
from tests.http.test_serve import Served, serve

pytestmark = pytest.mark.slow
DISK = "16m"


def mount(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``mount ARGS`` (the test's own arguments)."""
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=check)  # noqa: S603, S607


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test, unmounted after it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = mount("-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(disk), check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or made.returncode}); needs root in a "
                    "container allowed to mount")
    try:
        yield disk
    finally:
        mount("-o", "remount,rw", str(disk), check=False)
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)  # noqa: S603, S607


@pytest.fixture
def served_on_disk(small_disk: Path, tmp_path: Path) -> Iterator[tuple[Served, str, Path]]:
    """``pingjing serve`` on a store on the small disk; yields it, a scan path and the store."""
    database = small_disk / "store.sqlite3"
    county_store(str(database))
    keyring = load_keyring(Settings(qr_key_file=tmp_path / "var" / "qr-keys.json"))
    scan = f"/s/{make_token(keyring, QrSubject.OFFICER, '100102', 1)}"
    running = serve(database, "--no-demo", "--no-scheduler", workdir=tmp_path,
                    env={"PINGJING_CITIZEN_POSTS_PER_MINUTE": "0"})
    try:
        yield running, scan, database
    finally:
        mount("-o", "remount,rw", str(small_disk), check=False)
        running.process.terminate()
        running.process.wait(60)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


def rate(running: Served, scan: str, n: int) -> httpx.Response:
    with httpx.Client(base_url=running.base, timeout=20) as http:
        http.cookies.set("pj_device", f"storage{n:020d}")
        return http.post(scan, data={"verdict": "dissatisfied", "service_score": "1", "attitude_score": "1",
                                     "efficiency_score": "1", "complaint": f"第{n}次", "phone": "13500000000"})


def refs(*answers: httpx.Response) -> list[str]:
    """The case references the thank-you pages among ``answers`` gave."""
    return [ref for a in answers if a.status_code == 200 for ref in re.findall(r'id="case-ref">([^<]+)<', a.text)]


def hotline(running: Served) -> httpx.Response:
    return httpx.post(f"{running.base}/api/v1/cases", timeout=20, headers={"Authorization": f"Bearer {OFFICE_TOKEN}"},
                      json={"intake": "hotline", "kind": "complaint", "unit_code": "PS1", "summary": "来电"})


def sound(database: Path, acknowledged: list[str]) -> None:
    """The file passes SQLite's own check, and every acknowledged case is whole in the log."""
    with sqlite3.connect(database) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert_whole(str(database), acknowledged)


def test_a_full_disk_is_refused_clearly_and_submissions_resume_once_space_is_freed(
    served_on_disk: tuple[Served, str, Path], small_disk: Path, tmp_path: Path
) -> None:
    running, scan, database = served_on_disk
    lines = tmp_path / "lines.jsonl"
    lines.write_text("\n".join(rating_lines(600, datetime(2021, 11, 1, tzinfo=UTC))) + "\n", encoding="utf-8")
    acknowledged = refs(*(rate(running, scan, n) for n in range(20)))
    assert len(acknowledged) == 20

    filler = fill(small_disk)
    full = [rate(running, scan, 100 + n) for n in range(30)]  # enough to need new pages
    refused = [a for a in full if a.status_code != 200]
    assert refused, "the disk never filled up"
    assert {a.status_code for a in refused} == {503}
    assert all("系统暂时无法提交" in a.text for a in refused)
    acknowledged += refs(*full)
    api = hotline(running)
    assert api.status_code == 503
    assert api.json() == {"error": "unavailable",
                          "message": "the event store's disk is full; nothing was written; try again later"}
    assert api.headers["retry-after"] == "5"
    imported = cli(str(database), "import", str(lines), cwd=tmp_path)
    _, errors = imported.communicate(timeout=60)
    assert imported.returncode == 1
    assert "pingjing: the event store's disk is full; nothing more was written" in errors
    assert "Traceback" not in errors

    filler.unlink()
    resumed = rate(running, scan, 200)
    assert resumed.status_code == 200
    assert hotline(running).status_code == 200
    sound(database, acknowledged + refs(resumed))


def test_a_store_on_a_read_only_file_system_is_refused_clearly_and_serves_again_once_writable(
    small_disk: Path, tmp_path: Path
) -> None:
    database = small_disk / "store.sqlite3"
    county_store(str(database))
    before = database.read_bytes()
    lines = tmp_path / "lines.jsonl"
    lines.write_text("\n".join(rating_lines(5, datetime(2021, 11, 1, tzinfo=UTC))) + "\n", encoding="utf-8")
    mount("-o", "remount,ro", str(small_disk))
    for argv in (("import", str(lines)), ("serve", "--no-demo", "--port", "0"), ("case", "list")):
        refused = cli(str(database), *argv, cwd=tmp_path)
        _, errors = refused.communicate(timeout=60)
        assert refused.returncode == 1, argv
        assert "pingjing: the store cannot be opened: the event store is read-only" in errors, errors
        assert "Traceback" not in errors
    mount("-o", "remount,rw", str(small_disk))
    assert database.read_bytes() == before  # nothing was touched

    keyring = load_keyring(Settings(qr_key_file=tmp_path / "var" / "qr-keys.json"))
    scan = f"/s/{make_token(keyring, QrSubject.OFFICER, '100102', 1)}"
    running = serve(database, "--no-demo", "--no-scheduler", workdir=tmp_path)
    try:
        answer = rate(running, scan, 1)
    finally:
        running.process.terminate()
        running.process.wait(60)
    assert answer.status_code == 200
    sound(database, refs(answer))
