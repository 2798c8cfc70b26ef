"""``pingjing projections``, ``rates``, ``case list|show`` and ``events export`` on the demo county.

The demo is loaded once per module (``pingjing demo --until 2021-11-30``, then the views
rebuilt) and each test works on its own copy of the SQLite file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from eventsourcing.persistence import OperationalError
from eventsourcing.sqlite import SQLiteTrackingRecorder

from adapters.bootstrap import Runtime, bootstrap
from adapters.cli import main
from adapters.demo.cao import CAO_UNIT
from adapters.settings import Settings
from adapters.store import resolve
from domain import commands as c
from domain.application import PingjingApp
from domain.audit import audit_score
from domain.ids import officer_id
from domain.rates import FIVE_RATES, ON_TIME, parse_period
from projections.analyst import rebuild_in_memory
from projections.board import ts
from projections.store import ViewStore
from tests.adapters.support import copy_store, event_count, run_cli
from tests.conftest import SYSTEM
from tests.fakes import FakeClock
from tests.viewdump import dump

NOVEMBER = parse_period("2021-11")
AS_OF = "2021-11-15T00:00+08:00"
RATE_NAMES = [*FIVE_RATES, *ON_TIME]
CAO_LINE = re.compile(r"Cao case \(曹某案\): (PJ-\d{8}-[0-9A-Z]{6})")




@dataclass(frozen=True)
class Demo:
    """The demo county in a SQLite file with its views built, and a copy taken before they were."""

    path: Path
    without_views: Path
    cao_ref: str


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The CLI configures structlog for the process; put it back after each test."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """``pingjing demo --until 2021-11-30`` and ``projections rebuild --jobs 1``, once per module."""
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "demo.sqlite3"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert run_cli("--database", str(path), "demo", "--until", "2021-11-30") == 0, err.getvalue()
        without_views = copy_store(path, folder / "without-views.sqlite3")
        assert run_cli("--database", str(path), "projections", "rebuild", "--jobs", "1") == 0, err.getvalue()
    found = CAO_LINE.search(out.getvalue())
    assert found, out.getvalue()
    structlog.reset_defaults()
    return Demo(path, without_views, found.group(1))


@pytest.fixture
def db(demo: Demo, tmp_path: Path) -> str:
    """This test's own copy of the demo store."""
    return str(copy_store(demo.path, tmp_path / "demo.sqlite3"))


@pytest.fixture
def events_app(db: str) -> Iterator[PingjingApp]:
    """The application on this test's copy: to write new events, and to count events apart from the CLI."""
    app = PingjingApp(env=resolve(db).env)
    yield app
    app.close()


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run the command, expect exit 0, and parse what it printed."""
    status = run_cli(*argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


def status_of(capsys: pytest.CaptureFixture[str], db: str) -> dict[str, tuple[int, int, int]]:
    """``projections status --format json`` as name -> (position, head, lag)."""
    rows = cli_json(capsys, "--database", db, "projections", "status", "--format", "json")
    return {row["name"]: (row["position"], row["head"], row["lag"]) for row in rows}


def write_encounters(app: PingjingApp, count: int) -> None:
    """Log ``count`` encounters of the Cao unit: new events the views have not seen."""
    now = app.clock.now()
    for i in range(count):
        app.log_encounter(
            c.LogEncounter(kind="duty", happened_at=now - timedelta(minutes=i), unit_code=CAO_UNIT), SYSTEM
        )


# -- projections status and rebuild -----------------------------------------------------------


#: One process, and one per projection (the default on a file store).
JOBS = pytest.mark.parametrize("jobs", ["1", "2"], ids=["one-process", "parallel"])


@JOBS
def test_status_shows_the_lag_of_new_events_and_none_after_a_rebuild(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    head = events_app.recorder.max_notification_id()
    assert status_of(capsys, db) == {"cases": (head, head, 0), "activity": (head, head, 0)}

    write_encounters(events_app, 3)

    assert status_of(capsys, db) == {"cases": (head, head + 3, 3), "activity": (head, head + 3, 3)}
    assert run_cli("--database", db, "projections", "rebuild", "--jobs", jobs) == 0
    assert "rebuilt cases" in capsys.readouterr().out
    assert status_of(capsys, db) == {"cases": (head + 3, head + 3, 0), "activity": (head + 3, head + 3, 0)}


def test_rebuild_of_only_the_cases_projection_leaves_the_activity_projection_behind(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str]
) -> None:
    head = events_app.recorder.max_notification_id()
    write_encounters(events_app, 2)

    assert run_cli("--database", db, "projections", "rebuild", "--only", "cases") == 0

    out = capsys.readouterr().out
    assert "rebuilt cases from" in out
    assert "activity" not in out
    assert status_of(capsys, db) == {"cases": (head + 2, head + 2, 0), "activity": (head, head + 2, 2)}


def test_rebuild_only_an_unknown_projection_exits_2(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", db, "projections", "rebuild", "--only", "board") == 2

    assert "invalid choice: 'board'" in capsys.readouterr().err


@JOBS
def test_rebuild_until_a_position_leaves_the_views_at_that_position(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    head = events_app.recorder.max_notification_id()

    assert run_cli("--database", db, "projections", "rebuild", "--until-position", "5000", "--jobs", jobs) == 0

    capsys.readouterr()
    assert status_of(capsys, db) == {"cases": (5000, head, head - 5000), "activity": (5000, head, head - 5000)}
    views = ViewStore.beside(events_app)
    assert dump(views) == dump(rebuild_in_memory(events_app, until_position=5000))


@JOBS
def test_rebuild_as_of_a_moment_into_a_new_file_leaves_the_live_views_untouched(
    db: str, events_app: PingjingApp, tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    write_encounters(events_app, 1)
    live = ViewStore.beside(events_app)
    before = dump(live)
    status_before = status_of(capsys, db)
    into = tmp_path / "past" / "as-of.sqlite3"

    assert (
        run_cli("--database", db, "projections", "rebuild", "--as-of", AS_OF, "--into", str(into), "--jobs", jobs) == 0
    )

    assert str(into) in capsys.readouterr().out
    assert into.is_file()
    assert status_of(capsys, db) == status_before
    assert dump(live) == before
    past = ViewStore.sqlite_file(into)
    try:
        tables = dump(past)
    finally:
        past.close()
    moment = datetime.fromisoformat(AS_OF)
    assert tables == dump(rebuild_in_memory(events_app, as_of=moment))
    opened = [row[10] for row in tables["pj_board"]]
    assert opened
    assert max(opened) <= str(ts(moment)), "a case opened after the moment"


def test_rebuild_in_one_process_of_a_store_whose_views_were_never_built_builds_them(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(copy_store(demo.without_views, tmp_path / "fresh.sqlite3"))
    head = event_count(db)

    assert run_cli("--database", db, "projections", "rebuild", "--jobs", "1") == 0, capsys.readouterr().err

    capsys.readouterr()
    assert status_of(capsys, db) == {"cases": (head, head, 0), "activity": (head, head, 0)}


def test_a_parallel_rebuild_of_a_store_whose_views_were_never_built_builds_them(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(copy_store(demo.without_views, tmp_path / "fresh.sqlite3"))
    head = event_count(db)
    # Whoever finds no tracking table lingers before creating it, so that every process of the
    # rebuild (forked, so they share this patch) finds none either: the race that happens now and
    # then (one run in a few), made certain. Not a deadline: the pause only widens the window.
    look = SQLiteTrackingRecorder.max_tracking_id

    def look_then_linger(recorder: SQLiteTrackingRecorder, application_name: str) -> int | None:
        try:
            return look(recorder, application_name)
        except OperationalError:
            if application_name == "__migration__":
                time.sleep(1.0)
            raise

    monkeypatch.setattr(SQLiteTrackingRecorder, "max_tracking_id", look_then_linger)

    assert run_cli("--database", db, "projections", "rebuild", "--jobs", "2") == 0, capsys.readouterr().err

    capsys.readouterr()
    assert status_of(capsys, db) == {"cases": (head, head, 0), "activity": (head, head, 0)}


@JOBS
def test_rebuild_as_of_a_moment_reports_no_more_events_than_happened_by_then(
    db: str, events_app: PingjingApp, tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    moment = datetime.fromisoformat(AS_OF)
    by_then = sum(1 for _, event in events_app.iter_events() if event.meta.occurred_at <= moment)
    assert by_then < events_app.recorder.max_notification_id()
    into = str(tmp_path / "as-of.sqlite3")

    assert run_cli("--database", db, "projections", "rebuild", "--as-of", AS_OF, "--into", into, "--jobs", jobs) == 0

    reported = [int(n) for n in re.findall(r"from (\d+) events", capsys.readouterr().out)]
    assert reported
    assert max(reported) <= by_then


def test_rebuild_as_of_without_into_exits_2_and_keeps_the_live_views(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str]
) -> None:
    live = ViewStore.beside(events_app)
    before = dump(live)

    assert run_cli("--database", db, "projections", "rebuild", "--as-of", AS_OF) == 2

    assert "give it --into PATH" in capsys.readouterr().err
    assert dump(live) == before


def test_rebuild_into_an_existing_file_exits_2_and_leaves_the_file_alone(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    into = tmp_path / "taken.sqlite3"
    into.write_bytes(b"not a database")

    assert run_cli("--database", db, "projections", "rebuild", "--into", str(into)) == 2

    assert f"{into} already exists" in capsys.readouterr().err
    assert into.read_bytes() == b"not a database"


def test_rebuild_as_of_a_moment_without_a_time_zone_exits_2(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    into = tmp_path / "as-of.sqlite3"

    assert run_cli("--database", db, "projections", "rebuild", "--as-of", "2021-11-15T00:00", "--into", str(into)) == 2

    assert "has no time zone" in capsys.readouterr().err
    assert not into.exists()


# -- rates ------------------------------------------------------------------------------------


def in_november(moment: datetime) -> bool:
    """Whether a moment falls in November 2021, Asia/Shanghai."""
    return NOVEMBER.start <= moment < NOVEMBER.end


def test_rates_of_the_county_as_json_give_every_rate_with_numerator_and_denominator(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str]
) -> None:
    report = cli_json(capsys, "--database", db, "rates", "--scope", "county", "--period", "2021-11", "--format", "json")

    assert (report["scope"], report["period"]) == ("county", "2021-11")
    assert list(report["rates"]) == RATE_NAMES
    for name, rate in report["rates"].items():
        assert 0 <= rate["numerator"] <= rate["denominator"], name
        assert rate["denominator"] > 0, f"{name}: the demo month has something to divide by"
        assert rate["value"] == pytest.approx(rate["numerator"] / rate["denominator"]), name
    events = [event for _, event in events_app.iter_events()]
    kinds = [type(e).__qualname__ for e in events]
    ratings = [e for e, k in zip(events, kinds, strict=True) if k == "Rating.Submitted"]
    encounters = [e for e, k in zip(events, kinds, strict=True) if k == "Encounter.Logged"]
    opened = [e for e, k in zip(events, kinds, strict=True) if k == "Case.Opened"]
    assert report["rates"]["satisfaction"]["denominator"] == sum(in_november(e.meta.occurred_at) for e in ratings)
    assert report["rates"]["satisfaction"]["numerator"] == sum(
        in_november(e.meta.occurred_at) and e.verdict != "dissatisfied" for e in ratings
    )
    assert report["rates"]["scan"]["denominator"] == sum(in_november(e.happened_at) for e in encounters)
    assert report["counts"]["cases_opened"] == sum(in_november(e.meta.occurred_at) for e in opened)


def test_rates_as_csv_have_a_header_and_one_row_per_rate_matching_the_json(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = cli_json(capsys, "--database", db, "rates", "--period", "2021-11", "--format", "json")

    assert run_cli("--database", db, "rates", "--period", "2021-11", "--format", "csv") == 0

    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["scope", "period", "rate", "numerator", "denominator", "value"]
    assert [row[2] for row in rows[1:]] == RATE_NAMES
    for scope, period, name, numerator, denominator, value in rows[1:]:
        rate = report["rates"][name]
        assert (scope, period) == ("county", "2021-11")
        assert (int(numerator), int(denominator)) == (rate["numerator"], rate["denominator"])
        assert float(value) == pytest.approx(rate["value"], abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--scope", "unit:NOPE", "--period", "2021-11"), "unknown unit 'NOPE'"),
        (("--scope", "officer:999999", "--period", "2021-11"), "unknown officer '999999'"),
        (("--scope", "district:1", "--period", "2021-11"), "must be county, unit:CODE or officer:BADGE"),
        (("--period", "2021-13"), "'2021-13' has no month 13"),
        (("--period", "2021-W54"), "is not an ISO week of 2021"),
        (("--period", "nonsense"), "must be an ISO week like 2021-W47 or a month like 2021-11"),
    ],
    ids=["unknown-unit", "unknown-officer", "bad-scope", "month-13", "week-54", "nonsense"],
)
def test_rates_of_an_unknown_scope_or_a_malformed_period_exit_1_saying_why(
    db: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert run_cli("--database", db, "rates", *argv) == 1

    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_rates_of_one_officer_count_only_that_officers_ratings(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = cli_json(capsys, "--database", db, "case", "list", "--format", "json")
    badge = next(row["officer_badge"] for row in cases if row["officer_badge"])

    report = cli_json(
        capsys,
        "--database",
        db,
        "rates",
        "--scope",
        f"officer:{badge.lower()}",
        "--period",
        "2021-11",
        "--format",
        "json",
    )

    assert report["scope"] == f"officer:{badge}"
    theirs = [
        e
        for _, e in events_app.iter_events()
        if type(e).__qualname__ == "Rating.Submitted" and e.officer_id == officer_id(badge)
    ]
    assert report["rates"]["satisfaction"]["denominator"] == sum(in_november(e.meta.occurred_at) for e in theirs) > 0
    county = cli_json(capsys, "--database", db, "rates", "--period", "2021-11", "--format", "json")
    for name in RATE_NAMES:
        assert report["rates"][name]["denominator"] <= county["rates"][name]["denominator"], name


def test_rates_as_of_a_moment_have_no_larger_denominators_than_now(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = cli_json(capsys, "--database", db, "rates", "--period", "2021-11", "--format", "json")

    then = cli_json(capsys, "--database", db, "rates", "--period", "2021-11", "--as-of", AS_OF, "--format", "json")

    for name in RATE_NAMES:
        assert then["rates"][name]["denominator"] <= now["rates"][name]["denominator"], name
    assert then["counts"]["ratings"] < now["counts"]["ratings"]
    assert then["counts"]["cases_opened"] < now["counts"]["cases_opened"]


# -- case list and case show ------------------------------------------------------------------


def run_at(moment: datetime, *argv: str) -> int:
    """``pingjing ARGV`` with the process clock at ``moment``."""

    def runtime(settings: Settings) -> Runtime:
        return bootstrap(settings, clock=FakeClock(moment))

    try:
        return main(list(argv), runtime_factory=runtime)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1


def test_case_list_overdue_holds_exactly_the_cases_whose_next_deadline_has_passed(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    board = cli_json(capsys, "--database", db, "case", "list", "--format", "json")
    waiting = {row["ref"]: datetime.fromisoformat(row["next_deadline"]) for row in board if row["next_deadline"]}
    # Half of the waiting cases are overdue; the one due exactly now is not (done at its deadline is on time).
    due_now, now = sorted(waiting.items(), key=lambda item: item[1])[len(waiting) // 2]

    assert run_at(now, "--database", db, "case", "list", "--overdue", "--format", "json") == 0

    overdue = json.loads(capsys.readouterr().out)
    listed = [row["ref"] for row in overdue]
    assert sorted(listed) == sorted(ref for ref, deadline in waiting.items() if deadline < now)
    assert 0 < len(listed) < len(waiting)
    assert due_now not in listed
    assert listed == sorted(listed, key=waiting.__getitem__), "most overdue first"
    for row in overdue:
        assert row["state"] != "closed"
        assert row["overdue"], row["ref"]
        assert all(datetime.fromisoformat(row["deadlines"][step]) < now for step in row["overdue"])


def test_case_show_as_json_has_the_sla_ledger_and_the_audit_score(
    db: str, demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    story = cli_json(capsys, "--database", db, "case", "show", demo.cao_ref, "--format", "json")

    sla = story["sla"]
    assert sla, "the Cao case ran SLA clocks"
    assert {run["case_ref"] for run in sla} == {demo.cao_ref}
    assert {run["status"] for run in sla} <= {"on_time", "late", "missed", "cancelled"}, "closed: nothing runs"
    assert {"push", "contact", "feedback", "callback"} <= {run["step"] for run in sla}
    for run in sla:
        assert run["started_at"] <= run["deadline"], run
        assert run["ended_at"] is not None, run
    audit = story["audit"]
    assert audit["score"] == audit_score(audit["deductions"])
    assert 0 <= audit["score"] <= 100


def test_case_show_of_an_open_case_lists_its_running_clocks_as_the_board_does(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    board = cli_json(capsys, "--database", db, "case", "list", "--status", "open", "--format", "json")
    row = next(r for r in board if r["waiting"])

    story = cli_json(capsys, "--database", db, "case", "show", row["ref"], "--format", "json")

    running = {run["step"]: run["deadline"] for run in story["sla"] if run["status"] == "running"}
    assert sorted(running) == sorted(row["waiting"])
    assert {step: datetime.fromisoformat(at) for step, at in running.items()} == {
        step: datetime.fromisoformat(at) for step, at in row["deadlines"].items()
    }
    assert story["audit"] is not None


# -- events export ----------------------------------------------------------------------------


def test_events_export_writes_every_event_and_the_opened_cases_match_the_board(
    db: str, events_app: PingjingApp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", db, "events", "export", "--format", "jsonl") == 0
    every = capsys.readouterr()
    assert run_cli("--database", db, "events", "export", "--format", "jsonl", "--type", "Case.Opened") == 0
    opened = capsys.readouterr()
    board = cli_json(capsys, "--database", db, "case", "list", "--format", "json")

    head = events_app.recorder.max_notification_id()
    assert len(every.out.splitlines()) == head
    assert f"exported {head} events" in every.err
    lines = [json.loads(line) for line in opened.out.splitlines()]
    assert {line["type"] for line in lines} == {"Case.Opened"}
    assert len(lines) == len(board) > 0
    assert sorted(line["data"]["ref"] for line in lines) == sorted(row["ref"] for row in board)
