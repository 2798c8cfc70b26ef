"""Bulk import of JSON lines: good lines apply, each bad line is reported and writes nothing."""

from __future__ import annotations

import gc
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import importer
from adapters.bootstrap import Runtime, bootstrap
from adapters.cli import main
from adapters.settings import Settings
from domain.application import PingjingApp
from domain.commands import COMMANDS_BY_NAME, SubmitRating
from domain.errors import NotFoundError
from domain.values import Channel, Verdict
from tests.adapters.support import event_count, run_cli

AT = "2021-11-01T08:00:00+08:00"  # before the test clock's 09:00


def line(cmd: str, actor: Any = "admin:admin-1", *, at: str = AT, channel: str | None = None,
         **args: Any) -> str:
    """One import line."""
    data: dict[str, Any] = {"cmd": cmd, "at": at, "actor": actor, "args": args}
    if channel is not None:
        data["channel"] = channel
    return json.dumps(data, ensure_ascii=False)


def rating(verdict: str = "dissatisfied", *, key: str = "100102", channel: str | None = None,
           **extra: Any) -> str:
    """A citizen's rating of an officer."""
    return line("submit_rating", "citizen:anonymous", channel=channel, target="officer", key=key,
                verdict=verdict, service_score=2, attitude_score=2, efficiency_score=2, **extra)


#: A bureau and two stations with their heads, and an officer of PS1: one event per line.
SETUP = [
    line("register_unit", code="BUR", unit_name="县公安局", kind="bureau"),
    line("register_unit", code="PS1", unit_name="城关派出所", kind="police_station", parent_code="BUR"),
    line("register_unit", code="PS2", unit_name="青同派出所", kind="police_station", parent_code="BUR"),
    line("register_officer", badge="100101", officer_name="城关所长", kind="police", unit_code="PS1"),
    line("register_officer", badge="100201", officer_name="青同所长", kind="police", unit_code="PS2"),
    line("assign_unit_head", unit_code="PS1", badge="100101"),
    line("assign_unit_head", unit_code="PS2", badge="100201"),
    line("register_officer", badge="100102", officer_name="李警官", kind="police", unit_code="PS1"),
]
#: A dissatisfied rating records the rating, opens the case and pushes it.
EVENTS_OF_A_CASE_RATING = 3


def events(app: PingjingApp) -> int:
    """How many events the store holds."""
    return app.recorder.max_notification_id() or 0


def imported(app: PingjingApp, lines: list[str], **options: bool) -> importer.ImportReport:
    """Run an import of ``lines``."""
    return importer.run_import(app, lines, run_id="test", **options)


def set_up_a_case(app: PingjingApp) -> str:
    """Import the county and one dissatisfied rating; the reference of its case."""
    report = imported(app, [*SETUP, rating(phone="13800138000")])
    assert report.refused == []
    ref = report.lines[-1].receipt.case_ref if report.lines[-1].receipt else None
    assert ref is not None
    return ref


# -- run_import: good and bad lines ------------------------------------------------------------


def test_good_lines_apply_in_order(app: PingjingApp) -> None:
    report = imported(app, [*SETUP, rating(phone="13800138000")])

    assert report.refused == []
    assert report.applied == len(SETUP) + 1
    assert report.written
    assert [r.number for r in report.lines] == list(range(1, len(SETUP) + 2))
    assert events(app) == len(SETUP) + EVENTS_OF_A_CASE_RATING
    assert app.get_unit("PS1").head_badge == "100101"
    assert app.get_officer("100102").name == "李警官"


BAD_LINES = {
    "bad-json": ('{"cmd": "register_unit", "at": ', "not valid JSON"),
    "not-an-object": ("[1, 2, 3]", "must be a JSON object"),
    "score-9": (
        line("submit_rating", "citizen:anonymous", target="officer", key="100102", verdict="satisfied",
             service_score=9, attitude_score=4, efficiency_score=4),
        "args.service_score: Input should be less than or equal to 5",
    ),
    "at-without-zone": (
        line("register_unit", at="2021-11-01T08:00:00", code="X1", unit_name="x", kind="bureau"),
        "at: Input should have timezone info",
    ),
    "unknown-cmd": (line("frobnicate", code="X2"), "'frobnicate'"),
    "unknown-field": (
        line("register_unit", code="X3", unit_name="x", kind="bureau", colour="red"),
        "args.colour: Extra inputs are not permitted",
    ),
    "actor-without-role": (
        line("register_unit", "admin-1", code="X4", unit_name="x", kind="bureau"),
        "actor",
    ),
    "actor-object-without-role": (
        line("register_unit", {"principal": "admin-1"}, code="X5", unit_name="x", kind="bureau"),
        "actor.ActorObject.role: Field required",
    ),
    "actor-with-unknown-role": (
        line("register_unit", "chief:admin-1", code="X6", unit_name="x", kind="bureau"),
        "unknown role 'chief'",
    ),
    "unknown-officer": (rating(key="999999"), "unknown officer '999999'"),
    "role-may-not": (
        line("register_unit", "citizen:anonymous", code="X7", unit_name="x", kind="bureau"),
        "citizen:anonymous may not register_unit",
    ),
    "unknown-parent-unit": (
        line("register_unit", code="X8", unit_name="x", kind="police_station", parent_code="NOPE"),
        "unknown unit 'NOPE'",
    ),
}


@pytest.mark.parametrize(("bad", "reason"), list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_a_bad_line_is_reported_with_its_number_and_reason_and_the_others_apply(
    app: PingjingApp, bad: str, reason: str
) -> None:
    lines = [*SETUP, bad, rating(phone="13800138000")]

    report = imported(app, lines)

    assert [(r.number, r.receipt) for r in report.refused] == [(len(SETUP) + 1, None)]
    assert reason in (report.refused[0].error or "")
    assert report.applied == len(SETUP) + 1
    assert report.written
    assert events(app) == len(SETUP) + EVENTS_OF_A_CASE_RATING


def test_a_refused_command_names_itself_when_the_line_says_what_it_is(app: PingjingApp) -> None:
    report = imported(app, [*SETUP, rating(key="999999"), "{oops"])

    assert [(r.number, r.command) for r in report.refused] == [
        (len(SETUP) + 1, "submit_rating"),
        (len(SETUP) + 2, None),
    ]


def test_a_unit_head_of_another_unit_is_refused_and_the_right_head_applies(app: PingjingApp) -> None:
    ref = set_up_a_case(app)
    before = events(app)
    lines = [
        line("contact_citizen", "unit_head:100201", ref=ref, note="电话联系当事人"),
        line("contact_citizen", "unit_head:100101", ref=ref, note="电话联系当事人"),
    ]

    report = imported(app, lines)

    assert [r.number for r in report.refused] == [1]
    assert "not the head of unit PS1" in (report.refused[0].error or "")
    assert report.applied == 1
    assert events(app) == before + 1
    assert app.get_case(ref).state.value == "contacted"


def test_blank_lines_are_skipped_but_counted_in_line_numbers(app: PingjingApp) -> None:
    report = imported(app, [SETUP[0], "\n", "   \n", "{bad"])

    assert report.applied == 1
    assert [r.number for r in report.refused] == [4]


# -- atomic and dry run ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [BAD_LINES["score-9"][0], BAD_LINES["unknown-officer"][0]], ids=["invalid-line", "domain-refusal"]
)
def test_an_atomic_import_with_one_bad_line_writes_nothing_and_reports_it(app: PingjingApp, bad: str) -> None:
    before = app.recorder.max_notification_id()
    lines = [*SETUP, bad, rating(phone="13800138000")]

    report = imported(app, lines, atomic=True)

    assert app.recorder.max_notification_id() == before
    assert not report.written
    assert [r.number for r in report.refused] == [len(SETUP) + 1]
    with pytest.raises(NotFoundError, match="unknown unit"):
        app.get_unit("BUR")


def test_an_atomic_import_of_good_lines_writes_them_all(app: PingjingApp) -> None:
    report = imported(app, [*SETUP, rating(phone="13800138000")], atomic=True)

    assert report.written
    assert report.refused == []
    assert events(app) == len(SETUP) + EVENTS_OF_A_CASE_RATING


def test_a_dry_run_writes_nothing_and_decides_each_line_on_the_ones_before(app: PingjingApp) -> None:
    before = app.recorder.max_notification_id()
    # SETUP[3] registers an officer in PS1, which SETUP[1] registered two lines before.
    lines = [*SETUP, rating(key="999999"), rating(phone="13800138000")]

    report = imported(app, lines, dry_run=True)

    assert app.recorder.max_notification_id() == before
    assert not report.written
    assert report.applied == len(SETUP) + 1
    assert report.lines[3].command == "register_officer"
    assert report.lines[3].error is None
    assert [r.number for r in report.refused] == [len(SETUP) + 1]
    assert "unknown officer '999999'" in (report.refused[0].error or "")
    assert report.lines[-1].receipt is not None
    assert report.lines[-1].receipt.case_ref is not None


def test_a_dry_run_reports_a_refusal_that_depends_on_an_earlier_line(app: PingjingApp) -> None:
    lines = [
        line("register_unit", code="BUR", unit_name="县公安局", kind="bureau"),
        line("register_unit", code="BUR", unit_name="县公安局", kind="bureau"),
    ]

    report = imported(app, lines, dry_run=True)

    assert [r.number for r in report.refused] == [2]
    assert "unit 'BUR' already exists" in (report.refused[0].error or "")
    assert events(app) == 0


# -- channel -----------------------------------------------------------------------------------


def test_the_lines_channel_is_recorded_as_the_cases_intake(app: PingjingApp) -> None:
    lines = [*SETUP, rating(channel="hotline", phone="13800138000"), rating(phone="13900139000")]

    report = imported(app, lines)

    assert report.refused == []
    hotline, default = (r.receipt.case_ref for r in report.lines[-2:] if r.receipt)
    assert hotline is not None
    assert default is not None
    assert app.get_case(hotline).intake is Channel.HOTLINE
    assert app.get_case(default).intake is Channel.IMPORT
    first_event = app.case_events(hotline)[0]
    assert first_event.meta.channel is Channel.HOTLINE


def test_an_unknown_channel_is_a_bad_line(app: PingjingApp) -> None:
    report = imported(app, [*SETUP, rating(channel="pigeon", phone="13800138000")])

    assert [r.number for r in report.refused] == [len(SETUP) + 1]
    assert "channel" in (report.refused[0].error or "")


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh SQLite store for the CLI."""
    return str(tmp_path / "events.sqlite3")


def write_lines(path: Path, lines: list[str]) -> Path:
    """A JSON-lines file."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SUMMARY = re.compile(r"^(\d+) lines accepted, (\d+) refused, (written|not written)(.*); run imp-[0-9a-f]{8}$", re.M)


def test_cli_import_applies_good_lines_and_prints_a_summary(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "county.jsonl", [*SETUP, rating(phone="13800138000")])

    assert run_cli("--database", db, "import", str(path)) == 0

    summary = SUMMARY.search(capsys.readouterr().out)
    assert summary
    assert summary.groups() == (str(len(SETUP) + 1), "0", "written", "")
    assert event_count(db) == len(SETUP) + EVENTS_OF_A_CASE_RATING


def test_cli_import_writes_with_the_heap_it_started_with_frozen(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long import is a busy writer: the collector's full passes skip what the process held before it began."""
    seen: list[int] = []
    real = importer.run_import

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_freeze_count())
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "run_import", spying)
    gc.unfreeze()
    path = write_lines(tmp_path / "county.jsonl", SETUP)

    assert run_cli("--database", db, "import", str(path)) == 0

    assert seen
    assert seen[0] > 1000, "the import began with nothing frozen"


def test_cli_import_reports_a_bad_line_on_stderr_and_exits_1(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "county.jsonl", [*SETUP, rating(key="999999"), rating(phone="13800138000")])

    assert run_cli("--database", db, "import", str(path)) == 1

    captured = capsys.readouterr()
    assert f"{path}:{len(SETUP) + 1}: submit_rating refused: unknown officer '999999'" in captured.err
    summary = SUMMARY.search(captured.out)
    assert summary
    assert summary.groups() == (str(len(SETUP) + 1), "1", "written", "")
    assert event_count(db) == len(SETUP) + EVENTS_OF_A_CASE_RATING


def test_cli_atomic_import_with_a_bad_line_writes_nothing(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "county.jsonl", [*SETUP, "{bad", rating(phone="13800138000")])

    assert run_cli("--database", db, "import", "--atomic", str(path)) == 1

    captured = capsys.readouterr()
    assert f"{path}:{len(SETUP) + 1}: line refused: not valid JSON" in captured.err
    summary = SUMMARY.search(captured.out)
    assert summary
    assert summary.group(3, 4) == ("not written", " (atomic)")
    assert event_count(db) == 0


def test_cli_dry_run_writes_nothing_and_says_so(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "county.jsonl", [*SETUP, rating(phone="13800138000")])

    assert run_cli("--database", db, "import", "--dry-run", str(path)) == 0

    summary = SUMMARY.search(capsys.readouterr().out)
    assert summary
    assert summary.groups() == (str(len(SETUP) + 1), "0", "not written", " (dry run)")
    assert event_count(db) == 0


def test_cli_import_schema_is_a_json_schema_over_every_command(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", db, "import", "--schema") == 0

    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "pingjing import line"
    assert schema["discriminator"]["propertyName"] == "cmd"
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == set(COMMANDS_BY_NAME)
    assert sorted(ref["$ref"] for ref in schema["oneOf"]) == sorted(mapping.values())
    for name, ref in mapping.items():
        definition = schema["$defs"][ref.removeprefix("#/$defs/")]
        assert definition["properties"]["cmd"]["const"] == name
        assert set(definition["required"]) == {"cmd", "at", "actor", "args"}
        assert definition["additionalProperties"] is False


# -- the line model ----------------------------------------------------------------------------

TEXT = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=40)


@st.composite
def submit_rating_args(draw: st.DrawFn) -> dict[str, Any]:
    """Valid ``args`` of a ``submit_rating`` line."""
    args: dict[str, Any] = {
        "target": draw(st.sampled_from(["unit", "officer"])),
        "key": draw(st.from_regex(r"[A-Z0-9]{2,32}", fullmatch=True)),
        "verdict": draw(st.sampled_from([v.value for v in Verdict])),
        "service_score": draw(st.integers(1, 5)),
        "attitude_score": draw(st.integers(1, 5)),
        "efficiency_score": draw(st.integers(1, 5)),
    }
    for optional in ("comment", "complaint", "suggestion"):
        text = draw(st.none() | TEXT)
        if text is not None:
            args[optional] = text
    phone = draw(st.none() | st.from_regex(r"\+?[0-9][0-9 -]{3,18}[0-9]", fullmatch=True))
    if phone is not None:
        args["phone"] = phone
        name = draw(st.none() | st.text(st.characters(categories=["L"]), min_size=1, max_size=32))
        if name is not None:
            args["citizen_name"] = name
    code = draw(st.none() | st.from_regex(r"[0-9A-Z]{4,16}", fullmatch=True))
    if code is not None:
        args["encounter_code"] = code
    device = draw(st.none() | st.from_regex(r"[0-9a-f]{16,128}", fullmatch=True))
    if device is not None:
        args["device_hash"] = device
    return args


@given(
    args=submit_rating_args(),
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),  # noqa: DTZ001
    offset_minutes=st.integers(-12 * 60, 14 * 60),
)
def test_any_valid_submit_rating_line_validates_as_an_import_line(
    args: dict[str, Any], at: datetime, offset_minutes: int
) -> None:
    moment = at.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = json.dumps({"cmd": "submit_rating", "at": moment.isoformat(), "actor": "citizen:anonymous",
                       "args": args}, ensure_ascii=False)

    parsed = importer.ImportLine.validate_json(text)

    assert parsed.args == SubmitRating.model_validate(args)
    assert parsed.at == moment
    assert parsed.channel is Channel.IMPORT
    command, context = importer.parse_line(text, 7, "run")
    assert command == parsed.args
    assert context.correlation_id == "run-L7"


# -- volume ------------------------------------------------------------------------------------


def test_two_thousand_encounter_lines_import_in_a_few_seconds_in_batches(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encounters = [
        line("log_encounter", "system", kind="dispatch", happened_at=AT, badge="100102",
             external_ref=f"CJ20211101{n:05d}")
        for n in range(2000)
    ]
    path = write_lines(tmp_path / "dispatch.jsonl", [*SETUP, *encounters])
    batches: list[int] = []

    def counting_runtime(settings: Settings) -> Runtime:
        runtime = bootstrap(settings, configure_logging=False, observers=[])
        execute_batch = runtime.app.execute_batch

        def counted(items: Any, **options: Any) -> Any:
            batches.append(len(items))
            return execute_batch(items, **options)

        runtime.app.execute_batch = counted  # type: ignore[method-assign]
        return runtime

    started = time.perf_counter()
    status = main(["--database", db, "import", str(path)], runtime_factory=counting_runtime)
    elapsed = time.perf_counter() - started

    assert status == 0
    summary = SUMMARY.search(capsys.readouterr().out)
    assert summary
    assert summary.group(1, 2) == (str(len(SETUP) + 2000), "0")
    assert event_count(db) == len(SETUP) + 2000
    assert batches == [500, 500, 500, 500, len(SETUP)]
    assert elapsed < 15, f"2,000 lines took {elapsed:.1f} s"
