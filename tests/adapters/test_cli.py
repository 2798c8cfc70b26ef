"""The ``pingjing`` command, run in-process on SQLite files (exit 0 ok, 1 domain error, 2 usage)."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.demo.cao import CAO_PHONE, CAO_UNIT
from tests.adapters.support import copy_store, event_count, run_cli

REF = re.compile(r"PJ-\d{8}-[0-9A-Z]{6}")
CAO_LINE = re.compile(r"Cao case \(曹某案\): (PJ-\d{8}-[0-9A-Z]{6})")

#: The Cao case as the seed tells it: each event and the state it leaves the case in.
CAO_STORY = [
    ("Opened", "opened", "open"),
    ("Pushed", "pushed to unit", "pushed"),
    ("Supervised", "supervision contact", "pushed"),
    ("Flagged", "flagged for listed supervision", "pushed"),
    ("Supervised", "supervision contact", "pushed"),
    ("CitizenContacted", "unit contacted citizen", "contacted"),
    ("Supervised", "supervision contact", "contacted"),
    ("Supervised", "supervision contact", "contacted"),
    ("ResultReported", "unit reported result", "reported"),
    ("CallbackRecorded", "callback", "called_back"),
    ("AccountabilityRecorded", "accountability", "called_back"),
    ("Closed", "closed", "closed"),
    ("CommendationRecorded", "commendation", "closed"),
]


@dataclass(frozen=True)
class Loaded:
    """The demo loaded once through ``pingjing demo``, with what the command said."""

    path: Path
    status: int
    stdout: str
    stderr: str

    @property
    def cao_ref(self) -> str:
        """The Cao case's reference, as the command printed it."""
        found = CAO_LINE.search(self.stdout)
        assert found, f"no Cao case reference in {self.stdout!r}"
        return found.group(1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """``pingjing demo --until 2021-11-30`` into a fresh SQLite file, once per module."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = run_cli("--database", str(path), "demo", "--until", "2021-11-30")
    return Loaded(path, status, out.getvalue(), err.getvalue())


@pytest.fixture
def demo_db(loaded: Loaded, tmp_path: Path) -> str:
    """This test's own copy of the loaded demo store."""
    assert loaded.status == 0, loaded.stderr
    return str(copy_store(loaded.path, tmp_path / "demo.sqlite3"))


@pytest.fixture
def empty_db(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return str(tmp_path / "fresh.sqlite3")


def table_rows(text: str) -> list[list[str]]:
    """The rows of a printed table whose first cell is a number or a case reference."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|┃]", line)[1:-1]]
        if cells and (cells[0].isdigit() or REF.fullmatch(cells[0])):
            rows.append(cells)
    return rows


# -- init and demo -----------------------------------------------------------------------------


def test_init_creates_the_store_and_reports_it(empty_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", empty_db, "init") == 0

    out = capsys.readouterr().out
    assert f"store ready: SQLite file {empty_db} (0 events)" in out
    assert Path(empty_db).is_file()


def test_demo_loads_the_county_and_prints_the_cao_case_reference(loaded: Loaded) -> None:
    assert loaded.status == 0, loaded.stderr
    assert re.search(r"demo county loaded: 19 units, \d+ officers, \d+ encounters", loaded.stdout)
    assert re.fullmatch(r"PJ-20211109-[0-9A-Z]{6}", loaded.cao_ref)
    assert event_count(loaded.path) > 10_000


def test_demo_into_a_store_that_holds_events_exits_2_and_writes_nothing(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = event_count(demo_db)

    assert run_cli("--database", demo_db, "demo", "--until", "2021-11-30") == 2

    captured = capsys.readouterr()
    assert f"already holds {before} events" in captured.err
    assert "Cao case" not in captured.out
    assert event_count(demo_db) == before


def test_demo_with_an_end_date_in_the_future_exits_2_and_writes_nothing(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    future = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()

    assert run_cli("--database", empty_db, "demo", "--until", future) == 2

    assert "in the future" in capsys.readouterr().err
    assert event_count(empty_db) == 0


# -- case show ---------------------------------------------------------------------------------


def test_case_show_tells_the_cao_case_event_by_event_as_a_table(
    demo_db: str, loaded: Loaded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "show", loaded.cao_ref) == 0

    out = capsys.readouterr().out
    assert f"Case {loaded.cao_ref}: complaint via qr, now closed, round 1, flagged" in out
    rows = table_rows(out)
    assert [int(row[0]) for row in rows] == list(range(1, len(CAO_STORY) + 1))
    for row, (_, label, state_after) in zip(rows, CAO_STORY, strict=True):
        _number, at, event, actor, state, _details, _sla = row
        assert re.fullmatch(r"2021-11-\d\d \d\d:\d\d", at), row
        assert event.endswith(label), row
        assert state == state_after, row
        assert re.fullmatch(r"system|[a-z_]+:\S+", actor), row
    assert [row[3] for row in rows[:2]] == ["citizen:anonymous", "system"]
    assert rows[5][3].startswith("unit_head:")
    assert rows[2][3].startswith("supervisor:")


def test_case_show_as_json_gives_every_step_with_its_time_actor_and_state_after(
    demo_db: str, loaded: Loaded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "show", loaded.cao_ref, "--format", "json") == 0

    story = json.loads(capsys.readouterr().out)
    assert (story["ref"], story["state"], story["round"]) == (loaded.cao_ref, "closed", 1)
    steps = story["steps"]
    assert [s["event"] for s in steps] == [event for event, _, _ in CAO_STORY]
    assert [s["state_after"] for s in steps] == [
        "open", "pushed", "pushed", "pushed", "pushed", "contacted", "contacted", "contacted",
        "reported", "called_back", "called_back", "closed", "closed",
    ]
    assert [s["number"] for s in steps] == list(range(1, 14))
    times = [s["at"] for s in steps]
    assert times == sorted(times)
    assert times[0] == "2021-11-09 20:40"
    assert all(s["actor"] for s in steps)
    assert steps[0]["channel"] == "qr"


def test_case_show_masks_the_citizens_phone(
    demo_db: str, loaded: Loaded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "show", loaded.cao_ref, "--format", "json") == 0

    out = capsys.readouterr().out
    assert CAO_PHONE not in out
    assert f"contact={CAO_PHONE[:3]}****{CAO_PHONE[-4:]}" in out


def test_case_show_takes_the_reference_in_lower_case(
    demo_db: str, loaded: Loaded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "show", loaded.cao_ref.lower(), "--format", "json") == 0

    assert json.loads(capsys.readouterr().out)["ref"] == loaded.cao_ref


def test_case_show_of_an_unknown_reference_exits_1_saying_so(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "show", "PJ-20211109-ZZZZZZ") == 1

    captured = capsys.readouterr()
    assert "unknown case 'PJ-20211109-ZZZZZZ'" in captured.err
    assert captured.out == ""


def test_case_show_of_a_malformed_reference_exits_1_naming_the_expected_form(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "show", "PJ-2021-11") == 1

    err = capsys.readouterr().err
    assert "'PJ-2021-11' is not a case reference" in err
    assert "PJ-20211109-7K3M9Q" in err


# -- case list ---------------------------------------------------------------------------------


def test_case_list_of_closed_cases_as_json_holds_only_closed_cases_oldest_first(
    demo_db: str, loaded: Loaded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "list", "--format", "json") == 0
    every = json.loads(capsys.readouterr().out)

    assert run_cli("--database", demo_db, "case", "list", "--status", "closed", "--format", "json") == 0
    closed = json.loads(capsys.readouterr().out)

    assert closed, "the demo closes cases"
    assert {row["state"] for row in closed} == {"closed"}
    assert len(closed) == sum(1 for row in every if row["state"] == "closed") < len(every)
    assert loaded.cao_ref in {row["ref"] for row in closed}
    opened = [row["opened_at"] for row in closed]
    assert opened == sorted(opened)
    assert all(row["closed_at"] for row in closed)


def test_case_list_of_open_cases_leaves_out_the_closed_ones(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "list", "--status", "open", "--format", "json") == 0

    rows = json.loads(capsys.readouterr().out)
    assert rows
    assert "closed" not in {row["state"] for row in rows}


def test_case_list_of_one_unit_shows_only_that_units_cases(
    demo_db: str, loaded: Loaded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "list", "--unit", CAO_UNIT) == 0

    out = capsys.readouterr().out
    title = re.search(r"(\d+) cases", out)
    assert title
    rows = table_rows(out)
    assert len(rows) == int(title.group(1)) > 0
    assert {row[3] for row in rows} == {CAO_UNIT}
    assert loaded.cao_ref in {row[0] for row in rows}


def test_case_list_takes_the_unit_code_in_any_case(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "case", "list", "--unit", CAO_UNIT, "--format", "json") == 0
    upper = json.loads(capsys.readouterr().out)
    assert run_cli("--database", demo_db, "case", "list", "--unit", CAO_UNIT.lower(), "--format", "json") == 0

    assert json.loads(capsys.readouterr().out) == upper


def test_case_list_of_an_unknown_unit_exits_1(demo_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", demo_db, "case", "list", "--unit", "NOPE") == 1

    captured = capsys.readouterr()
    assert "unknown unit 'NOPE'" in captured.err
    assert captured.out == ""


# -- county and run ----------------------------------------------------------------------------


def test_county_as_json_gives_every_unit_with_its_figures(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", demo_db, "county", "--format", "json") == 0

    county = json.loads(capsys.readouterr().out)
    assert county["position"] == event_count(demo_db)
    units = {u["code"]: u for u in county["units"]}
    assert len(units) == 19
    station = units[CAO_UNIT]
    assert station["kind"] == "police_station"
    assert station["officers"] > 0
    assert set(station["ratings"]) <= {"satisfied", "basically_satisfied", "dissatisfied"}
    assert sum(county["ratings"].values()) == sum(sum(u["ratings"].values()) for u in units.values())
    assert county["cases"] > 0


def test_county_as_a_table_lists_every_unit(demo_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", demo_db, "county") == 0

    out = capsys.readouterr().out
    assert f"County state at log position {event_count(demo_db)}" in out
    for code in ("LSGAJ", "LSPS01", "LSPS15", "LSJJ", "LSCK", "LSDC"):
        assert code in out
    assert "Cases by state" in out


def test_run_on_an_empty_store_loads_the_demo_and_prints_the_county(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", empty_db, "run") == 0

    out = capsys.readouterr().out
    loaded_line = re.search(r"empty store: loaded the demo county \((\d+) events\)", out)
    assert loaded_line
    assert int(loaded_line.group(1)) == event_count(empty_db) > 10_000
    assert re.search(rf"Cao case \(曹某案\): {REF.pattern}", out)
    assert "County state at log position" in out


def test_run_on_a_store_that_holds_events_does_not_load_the_demo_again(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = event_count(demo_db)

    assert run_cli("--database", demo_db, "run") == 0

    out = capsys.readouterr().out
    assert "empty store" not in out
    assert f"County state at log position {before}" in out
    assert event_count(demo_db) == before


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["county", "--format", "xml"], "invalid choice: 'xml'"),
        (["case", "show", "PJ-20211109-ZZZZZZ", "--format", "csv"], "invalid choice: 'csv'"),
        (["case", "list", "--status", "lost"], "invalid choice: 'lost'"),
        (["case"], "required"),
        (["import"], "import needs a FILE"),
    ],
    ids=["unknown-subcommand", "bad-format", "bad-format-case-show", "bad-status", "no-action", "import-no-file"],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str], complaint: str, empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", empty_db, *argv) == 2

    assert complaint in capsys.readouterr().err


def test_import_of_a_missing_file_exits_2_naming_it(
    empty_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.jsonl"

    assert run_cli("--database", empty_db, "import", str(missing)) == 2

    assert f"no such file: {missing}" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_unsupported_database_scheme_exits_2_naming_the_scheme(
    how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if how == "option":
        status = run_cli("--database", "ftp://x", "init")
    else:
        monkeypatch.setenv("PINGJING_DATABASE", "ftp://x")
        status = run_cli("init")

    assert status == 2
    err = capsys.readouterr().err
    assert "scheme 'ftp' is not supported" in err


def test_an_unreachable_postgres_with_a_schema_exits_1_saying_the_store_cannot_be_opened(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = run_cli("--database", "postgresql://postgres@127.0.0.1:1/test?schema=s", "init")

    assert status == 1
    assert "cannot be opened" in capsys.readouterr().err
