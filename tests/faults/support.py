"""What the fault tests share: a county store, processes to start and kill, and checks of what survived."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from adapters.store import resolve
from domain import commands as c
from domain.application import PingjingApp
from domain.tokens import hash_token
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import ADMIN, County, make_app
from tests.fakes import FakeClock
from tests.viewdump import Tables, dump

ROOT = Path(__file__).resolve().parents[2]
OFFICE_TOKEN = "pj_faults_supervision_office"  # noqa: S105 - a test token, made below


def county_store(database: str) -> None:
    """The tiny county, the QR code of officer 100102 and a supervisor's token, in ``database``."""
    clock = FakeClock(datetime.now(UTC))
    app = make_app(database, clock)
    try:
        County(app, clock).setup()
        app.issue_qr(c.IssueQr(subject="officer", key="100102"), ADMIN)
        app.create_api_token(c.CreateApiToken(token_hash=hash_token(OFFICE_TOKEN), role="supervisor",
                                              principal="dc-wang"), ADMIN)
    finally:
        app.close()


def rating_lines(count: int, start: datetime) -> list[str]:
    """``count`` import lines, each a dissatisfied rating with a complaint and a phone (each opens a case)."""
    lines = []
    for n in range(count):
        at = (start + timedelta(seconds=n)).isoformat()
        args = {"target": "officer", "key": "100102" if n % 2 else "F10103", "verdict": "dissatisfied",
                "service_score": 2, "attitude_score": 1, "efficiency_score": 2, "complaint": f"第{n}号投诉：等候过久",
                "phone": f"139{n:08d}"}
        lines.append(json.dumps({"cmd": "submit_rating", "at": at, "actor": "citizen:anonymous", "args": args},
                                ensure_ascii=False))
    return lines


def cli(database: str, *argv: str, stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE,
        cwd: Path | None = None) -> subprocess.Popen[str]:
    """``pingjing --database DATABASE ARGV`` as a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "PINGJING_LOG_FORMAT": "json"}
    return subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "adapters.cli", "--database", database, *argv],
        cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=True,
    )


def lines_of(stream: IO[str], wanted: int, marker: str) -> list[str]:
    """Read ``stream`` until ``wanted`` lines containing ``marker`` have been seen; return them."""
    seen: list[str] = []
    for line in stream:
        if marker in line:
            seen.append(line.strip())
            if len(seen) == wanted:
                break
    return seen


def open_app(database: str) -> PingjingApp:
    """The application on ``database``, as a restarted process would open it."""
    return PingjingApp(env=resolve(database).env, observers=[])


def case_integrity(app: PingjingApp) -> dict[str, Any]:
    """Every case with both its opening and its push, every rating's case present, and the case refs found."""
    events_of: dict[Any, list[str]] = defaultdict(list)
    ratings_with_case: list[str] = []
    refs: set[str] = set()
    for _, event in app.iter_events(batch=5000):
        name = type(event).__qualname__
        events_of[event.originator_id].append(name)
        if name == "Rating.Submitted" and event.case_ref:
            ratings_with_case.append(event.case_ref)
        if name == "Case.Opened":
            refs.add(event.ref)
    half_written = [names for names in events_of.values()
                    if "Case.Opened" in names and "Case.Pushed" not in names]
    orphans = [ref for ref in ratings_with_case if ref not in refs]
    return {"half_written": half_written, "orphan_ratings": orphans, "refs": refs}


def caught_up_and_rebuilt(database: str, scratch: Path) -> tuple[Tables, Tables]:
    """The views as left in ``database`` then caught up, and the same views rebuilt from nothing elsewhere."""
    app = open_app(database)
    try:
        views = ViewStore.beside(app)
        Runner(app, views, ALL).catch_up()
        followed = dump(views)
        fresh = ViewStore.sqlite_file(scratch)
        Runner(app, fresh, ALL).catch_up()
        rebuilt = dump(fresh)
        fresh.close()
    finally:
        app.close()
    return followed, rebuilt


def assert_whole(database: str, acknowledged: Iterable[str]) -> None:
    """Every acknowledged case reference is in the log, no case lacks its opening or its push,
    and no rating lost its case."""
    app = open_app(database)
    try:
        integrity = case_integrity(app)
    finally:
        app.close()
    assert set(acknowledged) <= integrity["refs"]
    assert integrity["half_written"] == []
    assert integrity["orphan_ratings"] == []
