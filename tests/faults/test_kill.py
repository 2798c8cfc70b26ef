"""``kill -9`` in the middle of work: nothing acknowledged is lost, nothing is half-written, the views recover.

A bulk import (acknowledging each batch with ``--progress``) and a projection follower are
killed while they work; so is ``pingjing serve`` under concurrent rating submissions. After
the restart every acknowledged command is in the log, every case has its opening and its
push (one transaction), every rating that opened a case has it, and the views left behind,
once caught up, equal the views rebuilt from nothing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from adapters.settings import Settings
from domain.values import QrSubject
from tests.faults.support import (
    assert_whole,
    case_integrity,
    caught_up_and_rebuilt,
    cli,
    county_store,
    lines_of,
    open_app,
    rating_lines,
)
from tests.http.test_serve import serve

pytestmark = pytest.mark.slow
_COMMITTED = re.compile(r"committed lines (\d+)-(\d+) \(run (imp-[0-9a-f]+)\)")


def test_an_import_killed_mid_way_keeps_every_acknowledged_batch_and_the_views_recover(tmp_path: Path) -> None:
    database = str(tmp_path / "import.sqlite3")
    county_store(database)
    source = tmp_path / "ratings.jsonl"
    source.write_text("\n".join(rating_lines(8_000, datetime(2021, 11, 1, tzinfo=UTC))) + "\n", encoding="utf-8")
    follower = cli(database, "projections", "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    importer = cli(database, "import", str(source), "--progress")
    assert importer.stderr is not None
    acknowledged = lines_of(importer.stderr, 4, "committed lines")
    importer.send_signal(signal.SIGKILL)
    follower.send_signal(signal.SIGKILL)
    importer.wait(30)
    follower.wait(30)
    assert len(acknowledged) == 4, "the import ended before it could be killed"

    numbers: set[int] = set()
    run_id = ""
    for line in acknowledged:
        found = _COMMITTED.search(line)
        assert found, line
        numbers |= set(range(int(found.group(1)), int(found.group(2)) + 1))
        run_id = found.group(3)
    app = open_app(database)
    try:
        in_log = {event.meta.correlation_id for _, event in app.iter_events(batch=5000)
                  if type(event).__qualname__ == "Rating.Submitted"}
        integrity = case_integrity(app)
    finally:
        app.close()
    assert {f"{run_id}-L{n}" for n in numbers} <= in_log
    assert len(in_log) < 8_000  # it was killed before the end
    assert integrity["half_written"] == []
    assert integrity["orphan_ratings"] == []
    followed, rebuilt = caught_up_and_rebuilt(database, tmp_path / "rebuilt.sqlite3")
    assert followed == rebuilt


def test_serve_killed_under_load_keeps_every_acknowledged_rating_and_the_views_recover(tmp_path: Path) -> None:
    database = tmp_path / "served.sqlite3"
    county_store(str(database))
    keyring = load_keyring(Settings(qr_key_file=tmp_path / "var" / "qr-keys.json"))
    scan = f"/s/{make_token(keyring, QrSubject.OFFICER, '100102', 1)}"
    # every client is 127.0.0.1 here: no per-address limit
    running = serve(database, "--no-demo", "--no-scheduler", env={"PINGJING_CITIZEN_POSTS_PER_MINUTE": "0"})
    acknowledged: list[str] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=running.base, timeout=10) as http:
            n = 0
            while not stop.is_set():
                n += 1
                form = {"verdict": "dissatisfied", "service_score": "1", "attitude_score": "1",
                        "efficiency_score": "1", "complaint": f"客户端{worker}第{n}次", "phone": "13700000000"}
                http.cookies.set("pj_device", f"{worker:02d}{n:020d}")
                try:
                    answer = http.post(scan, data=form)
                except httpx.HTTPError:
                    return  # the server is gone: this one was never acknowledged
                ref = re.search(r'id="case-ref">([^<]+)<', answer.text)
                if answer.status_code == 200 and ref:
                    acknowledged.append(ref.group(1))

    workers = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 800 and time.monotonic() < deadline:
        time.sleep(0.05)
    running.process.send_signal(signal.SIGKILL)
    running.process.wait(30)
    stop.set()
    for worker in workers:
        worker.join(30)
    assert len(acknowledged) >= 800

    assert_whole(str(database), acknowledged)
    followed, rebuilt = caught_up_and_rebuilt(str(database), tmp_path / "rebuilt.sqlite3")
    assert followed == rebuilt
